#include "protocol/smtp/reply.h"

#include <cassert>

namespace porcupine::smtp {
namespace {

void AppendSanitized(std::string* out, std::string_view text) {
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    out->push_back(c < 0x20 || c == 0x7f ? '?' : ch);
  }
}

void AppendCode(std::string* out, int code, char separator) {
  assert(code >= 200 && code <= 599);
  out->append(std::to_string(code));
  out->push_back(separator);
}

}  // namespace

void AppendReply(std::string* out, int code, std::string_view enhanced, std::string_view text) {
  AppendCode(out, code, ' ');
  if (!enhanced.empty()) {
    out->append(enhanced);
    out->push_back(' ');
  }
  AppendSanitized(out, text);
  out->append("\r\n");
}

void AppendMultilineReply(std::string* out, int code, const std::vector<std::string>& lines) {
  assert(!lines.empty());
  for (size_t i = 0; i < lines.size(); ++i) {
    AppendCode(out, code, i + 1 < lines.size() ? '-' : ' ');
    AppendSanitized(out, lines[i]);
    out->append("\r\n");
  }
}

}  // namespace porcupine::smtp
