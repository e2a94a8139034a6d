// Incremental, bounded line splitter shared by the text protocols.
//
// Bytes go in with Feed(); Next() hands out complete lines one at a time. A
// line ends at LF; the terminator is not part of the text. The reader never
// holds more than max_line + one Feed() worth of bytes: a line longer than
// max_line is reported once as kTooLong and then skipped up to its LF.
//
// Thread-safety: none; one reader per session.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace porcupine::protocol {

struct Line {
  std::string_view text;  // without CRLF / LF; valid until the next Feed() or Next()
  bool bare_lf = false;   // ended by LF without a preceding CR
  bool bare_cr = false;   // contains a CR that is not part of the terminator
};

class LineReader {
 public:
  enum class Kind {
    kLine,      // *out holds a complete line
    kNeedMore,  // no complete line buffered
    kTooLong,   // a line exceeded max_line; it is being discarded up to its LF
  };

  // max_line counts the line's bytes including its terminator.
  explicit LineReader(size_t max_line) : max_line_(max_line) {}

  void Feed(std::string_view bytes) { buf_.append(bytes); }

  // Extracts the next line. REQUIRES: out != nullptr.
  Kind Next(Line* out);

  // Removes and returns up to n raw buffered bytes (for protocols that switch
  // to counted reads). Bytes already handed out by Next() are gone.
  std::string TakeRaw(size_t n);

  // Drops every buffered byte and any overlong line being skipped: the
  // reader is as new (STARTTLS discards what the client pipelined).
  void Clear() {
    std::string().swap(buf_);
    pos_ = 0;
    discarding_ = false;
  }

  // Bytes received but not yet returned as a line.
  size_t buffered() const { return buf_.size() - pos_; }
  void set_max_line(size_t max_line) { max_line_ = max_line; }

 private:
  void Compact();

  size_t max_line_;
  std::string buf_;
  size_t pos_ = 0;           // start of unconsumed bytes in buf_
  bool discarding_ = false;  // inside an overlong line, skipping to LF
};

}  // namespace porcupine::protocol
