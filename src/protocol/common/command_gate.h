// Hands a session its command lines one at a time, holding each one across a
// tarpit pause when the session asks for it. Shared by the text protocols so
// that "slow down an abusive client" behaves the same everywhere.
//
// Thread-safety: none; one gate per session.
#pragma once

#include <optional>
#include <string>

#include "protocol/common/line_reader.h"

namespace porcupine::protocol {

// A command line copied out of the reader, so it survives the pause.
struct HeldLine {
  std::string text;
  bool too_long = false;  // longer than the reader's limit; text is empty
  bool bare_lf = false;
  bool bare_cr = false;
};

class CommandGate {
 public:
  enum class Kind {
    kLine,       // *out holds the next line: execute it
    kNeedInput,  // no complete line buffered
    kPause,      // a line is held: pause (tarpit), then call Pull again
  };

  // Takes the next line from `reader`. When `tarpit` is true a freshly read
  // line is held and kPause returned first; the next call hands it out.
  // REQUIRES: out != nullptr.
  Kind Pull(LineReader& reader, bool tarpit, HeldLine* out);
  // Forgets a held line (its input was discarded).
  void Reset() { held_.reset(); }

 private:
  std::optional<HeldLine> held_;
};

}  // namespace porcupine::protocol
