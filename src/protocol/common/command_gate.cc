#include "protocol/common/command_gate.h"

namespace porcupine::protocol {

CommandGate::Kind CommandGate::Pull(LineReader& reader, bool tarpit, HeldLine* out) {
  if (!held_) {
    Line line;
    switch (reader.Next(&line)) {
      case LineReader::Kind::kNeedMore:
        return Kind::kNeedInput;
      case LineReader::Kind::kTooLong:
        held_ = HeldLine{{}, true, false, false};
        break;
      case LineReader::Kind::kLine:
        held_ = HeldLine{std::string(line.text), false, line.bare_lf, line.bare_cr};
        break;
    }
    if (tarpit) return Kind::kPause;
  }
  *out = std::move(*held_);
  held_.reset();
  return Kind::kLine;
}

}  // namespace porcupine::protocol
