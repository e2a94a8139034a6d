#include "protocol/pop3/reply.h"

namespace porcupine::pop3 {
namespace {

bool IsControl(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

void AppendSanitized(std::string* out, std::string_view text) {
  for (char c : text) out->push_back(IsControl(c) ? '?' : c);
}

void AppendStatus(std::string* out, std::string_view status, std::string_view text) {
  out->append(status);
  if (!text.empty()) {
    out->push_back(' ');
    AppendSanitized(out, text);
  }
  out->append("\r\n");
}

// The end of the line starting at `pos` (the index of its LF, or the size
// of `s` for an unterminated last line).
size_t LineEnd(std::string_view s, size_t pos) {
  size_t lf = s.find('\n', pos);
  return lf == std::string_view::npos ? s.size() : lf;
}

}  // namespace

void AppendOk(std::string* out, std::string_view text) { AppendStatus(out, "+OK", text); }

void AppendErr(std::string* out, std::string_view text) { AppendStatus(out, "-ERR", text); }

void AppendListLine(std::string* out, std::string_view line) {
  if (!line.empty() && line[0] == '.') out->push_back('.');
  AppendSanitized(out, line);
  out->append("\r\n");
}

void AppendTerminator(std::string* out) { out->append(".\r\n"); }

void AppendDotStuffed(std::string* out, std::string_view message) {
  // Room for the message, its terminator and a few stuffed dots; a message
  // with very many dot lines costs one more (geometric) growth.
  out->reserve(out->size() + message.size() + message.size() / 256 + 8);
  size_t pos = 0;
  while (pos < message.size()) {
    size_t lf = LineEnd(message, pos);
    size_t end = lf;
    if (end > pos && message[end - 1] == '\r') --end;
    if (message[pos] == '.') out->push_back('.');
    out->append(message.data() + pos, end - pos);
    out->append("\r\n");
    pos = lf + 1;
  }
  AppendTerminator(out);
}

std::string_view TopOfMessage(std::string_view message, uint64_t body_lines) {
  size_t pos = 0;
  // Skip the header up to and including the first empty line.
  for (;;) {
    if (pos >= message.size()) return message;
    size_t lf = LineEnd(message, pos);
    if (lf == message.size()) return message;
    bool empty = lf == pos || (lf == pos + 1 && message[pos] == '\r');
    pos = lf + 1;
    if (empty) break;
  }
  for (uint64_t i = 0; i < body_lines; ++i) {
    if (pos >= message.size()) return message;
    size_t lf = LineEnd(message, pos);
    if (lf == message.size()) return message;
    pos = lf + 1;
  }
  return message.substr(0, pos);
}

}  // namespace porcupine::pop3
