// SMTP reply formatting (RFC 5321 §4.2, RFC 2034 enhanced status codes).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace porcupine::smtp {

// Appends "<code> <enhanced> <text>\r\n" to *out ("<code> <text>" when
// `enhanced` is empty). Control characters in `text` (which may echo client
// data) become '?', so a reply can never be split or smuggle a line.
// REQUIRES: 200 <= code <= 599; out != nullptr.
void AppendReply(std::string* out, int code, std::string_view enhanced, std::string_view text);

// Appends a multi-line reply: "<code>-<line>" for all but the last line,
// "<code> <line>" for the last. REQUIRES: !lines.empty().
void AppendMultilineReply(std::string* out, int code, const std::vector<std::string>& lines);

}  // namespace porcupine::smtp
