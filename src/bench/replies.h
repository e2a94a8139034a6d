// Pure, incremental parsers of server replies for the bench's SMTP and POP3
// clients: bytes in (any split), a complete reply or "need more" or a typed
// error out. They never touch a socket.
//
// Both accept CRLF and, leniently, bare LF line ends. A parser error means
// the byte stream cannot be trusted any more: the caller closes the
// connection. Thread-safety: none; one parser per connection.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace porcupine::bench {

struct ReplyLimits {
  // Longest reply line including its line end.
  // Longest reply line including its line end; POP3 bodies may hold lines up
  // to the server's smtp_max_data_line (64 KiB by default).
  size_t max_line = 128u << 10;
  // Most lines in one multi-line SMTP reply (EHLO lists a dozen).
  size_t max_smtp_lines = 256;
  // Largest POP3 multi-line body (RETR of the biggest message, unstuffed).
  size_t max_body = 64u << 20;
};

// Splits buffered bytes into lines; the shared part of both parsers.
class LineBuffer {
 public:
  explicit LineBuffer(size_t max_line) : max_line_(max_line) {}
  void Feed(std::string_view bytes);
  // The next line without its terminator, valid until the next call; nullopt
  // when no complete line is buffered; InvalidArgument if a line is too long.
  Result<std::optional<std::string_view>> NextLine();
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  size_t max_line_;
  std::string buf_;
  size_t pos_ = 0;   // first unconsumed byte
  size_t scan_ = 0;  // bytes after pos_ known to hold no LF
};

struct SmtpReply {
  int code = 0;                    // 200..599
  std::vector<std::string> lines;  // each line's text after "NNN-" / "NNN "
  // Every line joined by a space; for error samples.
  std::string Text() const;
  // Whether any line after the first names this EHLO keyword (case-insensitive).
  bool HasKeyword(std::string_view keyword) const;
};

class SmtpReplyParser {
 public:
  explicit SmtpReplyParser(const ReplyLimits& limits = {})
      : limits_(limits), lines_(limits.max_line) {}
  void Feed(std::string_view bytes) { lines_.Feed(bytes); }
  // The next complete reply, nullopt when more bytes are needed, or
  // InvalidArgument for a malformed one (bad code, mixed codes across the
  // lines of one reply, too many lines, a line too long).
  Result<std::optional<SmtpReply>> Next();

 private:
  ReplyLimits limits_;
  LineBuffer lines_;
  SmtpReply partial_;  // lines of a multi-line reply read so far
};

struct Pop3Reply {
  bool ok = false;   // "+OK" or "-ERR"
  std::string text;  // the status line after "+OK" / "-ERR" and one space
  // For a multi-line +OK: the block, unstuffed, every line ending in CRLF,
  // without the terminating ".".
  std::string body;
  size_t body_lines = 0;
};

class Pop3ReplyParser {
 public:
  explicit Pop3ReplyParser(const ReplyLimits& limits = {})
      : limits_(limits), lines_(limits.max_line) {}
  void Feed(std::string_view bytes) { lines_.Feed(bytes); }
  // The reply to the oldest unanswered command. `multiline` says whether a
  // +OK to that command is followed by a dot-terminated block (RETR, TOP,
  // LIST and UIDL without argument, CAPA); -ERR never is. nullopt when more
  // bytes are needed; InvalidArgument for a status line that is neither +OK
  // nor -ERR, a line too long or a body over max_body.
  // REQUIRES: the same `multiline` until the reply is complete.
  Result<std::optional<Pop3Reply>> Next(bool multiline);

 private:
  ReplyLimits limits_;
  LineBuffer lines_;
  std::optional<Pop3Reply> partial_;  // status seen, body still coming
};

}  // namespace porcupine::bench
