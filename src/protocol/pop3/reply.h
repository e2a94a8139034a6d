// POP3 response formatting (RFC 1939 §3, RFC 2449 §8 response codes).
//
// Pure functions that append to an output buffer. Text that may come from
// outside (a configured host name, a backend's unique-id) has control
// characters replaced by '?', so a response can never be split or smuggle a
// line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace porcupine::pop3 {

// Appends "+OK <text>\r\n" ("+OK\r\n" when text is empty). REQUIRES: out != nullptr.
void AppendOk(std::string* out, std::string_view text);

// Appends "-ERR <text>\r\n". `text` may start with an RFC 2449 code such as
// "[SYS/TEMP]". REQUIRES: out != nullptr.
void AppendErr(std::string* out, std::string_view text);

// Appends one line of a multi-line response: dot-stuffed, sanitised, CRLF.
void AppendListLine(std::string* out, std::string_view line);

// Appends the ".\r\n" that ends a multi-line response.
void AppendTerminator(std::string* out);

// Appends `message` as the body of a multi-line response, then the
// terminator: every line starting with '.' gets another '.', every line
// ends in CRLF (a bare LF becomes CRLF, a final line without one gets one),
// so no byte sequence in a stored message can end the response early. An
// empty message gives just the terminator. One pass over the message; the
// buffer grows at most once or twice for typical mail.
// REQUIRES: out != nullptr.
void AppendDotStuffed(std::string* out, std::string_view message);

// RFC 1939 TOP: the prefix of `message` holding its header, the blank line
// after it, and the first `body_lines` lines of the body. A message without
// a blank line is all header and is returned whole; so is a body with fewer
// lines. Line ends are LF (with or without CR). Returns a view into `message`.
std::string_view TopOfMessage(std::string_view message, uint64_t body_lines);

}  // namespace porcupine::pop3
