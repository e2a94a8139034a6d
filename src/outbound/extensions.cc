#include "outbound/extensions.h"

#include <strings.h>

#include <algorithm>
#include <limits>

namespace porcupine::outbound {
namespace {

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  }
  return out;
}

bool Equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Splits at spaces (runs of them count as one).
std::vector<std::string_view> Words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find(' ', pos);
    if (end == std::string_view::npos) end = s.size();
    if (end > pos) out.push_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

uint64_t ParseSize(std::string_view s) {
  if (s.empty()) return 0;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return 0;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - digit) / 10) return 0;
    v = v * 10 + digit;
  }
  return v;
}

void AddAuth(Extensions* ext, const std::vector<std::string_view>& mechanisms) {
  for (std::string_view m : mechanisms) {
    if (!ext->HasAuth(m)) ext->auth.push_back(Upper(m));
  }
}

}  // namespace

bool Extensions::HasAuth(std::string_view mechanism) const {
  return std::any_of(auth.begin(), auth.end(),
                     [&](const std::string& m) { return Equal(m, mechanism); });
}

Extensions ParseExtensions(const Reply& ehlo_reply) {
  Extensions ext;
  for (size_t i = 1; i < ehlo_reply.lines.size(); ++i) {
    std::vector<std::string_view> words = Words(ehlo_reply.lines[i]);
    if (words.empty()) continue;
    std::string_view keyword = words.front();
    std::vector<std::string_view> params(words.begin() + 1, words.end());
    if (Equal(keyword, "PIPELINING")) {
      ext.pipelining = true;
    } else if (Equal(keyword, "SIZE")) {
      ext.size = true;
      ext.max_size = params.empty() ? 0 : ParseSize(params.front());
    } else if (Equal(keyword, "8BITMIME")) {
      ext.eight_bit_mime = true;
    } else if (Equal(keyword, "STARTTLS")) {
      ext.starttls = true;
    } else if (Equal(keyword, "SMTPUTF8")) {
      ext.smtputf8 = true;
    } else if (Equal(keyword, "ENHANCEDSTATUSCODES")) {
      ext.enhanced_status_codes = true;
    } else if (Equal(keyword, "AUTH")) {
      AddAuth(&ext, params);
    } else if (keyword.size() > 5 && Equal(keyword.substr(0, 5), "AUTH=")) {
      // Pre-RFC 4954 servers (old Outlook clients needed it): "AUTH=PLAIN LOGIN".
      params.insert(params.begin(), keyword.substr(5));
      AddAuth(&ext, params);
    }
  }
  return ext;
}

}  // namespace porcupine::outbound
