#include "protocol/imap/encode.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "protocol/imap/parser.h"

namespace porcupine::imap {
namespace {

// Longer strings go out as literals even when they could be quoted: a
// literal is cheaper for the client to skip.
constexpr size_t kMaxQuoted = 256;

char Upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }

constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct Civil {
  int64_t year;
  unsigned month;
  unsigned day;
};

Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<int64_t>(yoe) + era * 400 + (m <= 2), m, d};
}

unsigned DaysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

std::optional<unsigned> Digits(std::string_view s, size_t n) {
  if (s.size() != n) return std::nullopt;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v;
}

// "d-Mon-yyyy" (day one or two digits) → days since the epoch.
std::optional<int64_t> ParseDate(std::string_view s) {
  size_t d1 = s.find('-');
  if (d1 == std::string_view::npos || d1 == 0 || d1 > 2) return std::nullopt;
  if (s.size() != d1 + 9 || s[d1 + 4] != '-') return std::nullopt;
  std::optional<unsigned> day = Digits(s.substr(0, d1), d1);
  std::optional<unsigned> year = Digits(s.substr(d1 + 5), 4);
  std::string_view mon = s.substr(d1 + 1, 3);
  auto it = std::find_if(kMonths.begin(), kMonths.end(),
                         [&](std::string_view m) { return EqualsIgnoreCase(m, mon); });
  if (!day || !year || it == kMonths.end()) return std::nullopt;
  auto month = static_cast<unsigned>(it - kMonths.begin() + 1);
  if (*day == 0 || *day > DaysInMonth(*year, month)) return std::nullopt;
  return DaysFromCivil(*year, month, *day);
}

// ---- UTF-8 / UTF-16 for modified UTF-7

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Decodes the code point at s[*i] and advances *i; invalid → U+FFFD, one byte.
uint32_t NextCodePoint(std::string_view s, size_t* i) {
  auto b0 = static_cast<unsigned char>(s[*i]);
  size_t len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
  if (len == 1) {
    ++*i;
    return b0;
  }
  if (len == 0 || *i + len > s.size()) {
    ++*i;
    return 0xFFFD;
  }
  uint32_t cp = b0 & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    auto b = static_cast<unsigned char>(s[*i + k]);
    if ((b & 0xC0) != 0x80) {
      ++*i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++*i;
    return 0xFFFD;
  }
  *i += len;
  return cp;
}

constexpr std::string_view kB64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

int B64Value(char c) {
  size_t p = kB64.find(c);
  return p == std::string_view::npos ? -1 : static_cast<int>(p);
}

// One "&...-" run's base64 → UTF-8, validated.
bool DecodeRun(std::string_view b64, std::string* out) {
  uint32_t bits = 0;
  int nbits = 0;
  uint32_t high = 0;  // a pending high surrogate
  for (char c : b64) {
    int v = B64Value(c);
    if (v < 0) return false;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    nbits += 6;
    if (nbits < 16) continue;
    nbits -= 16;
    uint32_t unit = (bits >> nbits) & 0xFFFF;
    bits &= (1u << nbits) - 1;
    if (high != 0) {
      if (unit < 0xDC00 || unit > 0xDFFF) return false;
      AppendUtf8(out, 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00));
      high = 0;
    } else if (unit >= 0xD800 && unit <= 0xDBFF) {
      high = unit;
    } else if ((unit >= 0xDC00 && unit <= 0xDFFF) || (unit >= 0x20 && unit <= 0x7E)) {
      return false;  // a lone low surrogate, or printable ASCII that must be direct
    } else {
      AppendUtf8(out, unit);
    }
  }
  return high == 0 && nbits < 6 && bits == 0;
}

void FlushRun(std::string* out, uint32_t* bits, int* nbits) {
  if (*nbits > 0) out->push_back(kB64[(*bits << (6 - *nbits)) & 0x3F]);
  *bits = 0;
  *nbits = 0;
  out->push_back('-');
}

void PushUnit(std::string* out, uint32_t unit, uint32_t* bits, int* nbits) {
  *bits = (*bits << 16) | unit;
  *nbits += 16;
  while (*nbits >= 6) {
    *nbits -= 6;
    out->push_back(kB64[(*bits >> *nbits) & 0x3F]);
  }
  *bits &= (1u << *nbits) - 1;
}

}  // namespace

// ---- strings

void AppendString(std::string* out, std::string_view s) {
  bool quotable = s.size() <= kMaxQuoted &&
                  std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
  if (!quotable) {
    out->append("{" + std::to_string(s.size()) + "}\r\n");
    out->append(s);
    return;
  }
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

std::string EncodeString(std::string_view s) {
  std::string out;
  AppendString(&out, s);
  return out;
}

void AppendNString(std::string* out, const std::optional<std::string>& s) {
  if (!s) {
    out->append("NIL");
  } else {
    AppendString(out, *s);
  }
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return Upper(x) == Upper(y); });
}

std::string ToUpper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Upper(c);
  return out;
}

std::optional<uint64_t> ParseNumber64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    auto digit = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  return v;
}

std::optional<uint32_t> ParseNumber32(std::string_view s) {
  std::optional<uint64_t> v = ParseNumber64(s);
  if (!v || *v > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

// ---- flags

const std::vector<std::string>& SystemFlags() {
  static const std::vector<std::string> kFlags = {"\\Answered", "\\Flagged", "\\Deleted", "\\Seen",
                                                  "\\Draft"};
  return kFlags;
}

std::optional<std::string> CanonicalFlag(std::string_view flag) {
  if (flag.empty()) return std::nullopt;
  if (flag[0] == '\\') {
    for (const std::string& f : SystemFlags()) {
      if (EqualsIgnoreCase(f, flag)) return f;
    }
    return std::nullopt;
  }
  if (!std::all_of(flag.begin(), flag.end(), IsAtomChar)) return std::nullopt;
  return std::string(flag);
}

bool HasFlag(const std::vector<std::string>& flags, std::string_view flag) {
  return std::any_of(flags.begin(), flags.end(),
                     [&](const std::string& f) { return EqualsIgnoreCase(f, flag); });
}

bool SameFlags(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  auto covers = [](const std::vector<std::string>& x, const std::vector<std::string>& y) {
    return std::all_of(y.begin(), y.end(), [&](const std::string& f) { return HasFlag(x, f); });
  };
  return covers(a, b) && covers(b, a);
}

std::string FlagList(const std::vector<std::string>& flags) {
  std::string out = "(";
  for (const std::string& f : flags) {
    if (out.size() > 1) out.push_back(' ');
    out += f;
  }
  out.push_back(')');
  return out;
}

void AddFlag(std::vector<std::string>* flags, std::string_view flag) {
  if (!HasFlag(*flags, flag)) flags->emplace_back(flag);
}

void RemoveFlag(std::vector<std::string>* flags, std::string_view flag) {
  std::erase_if(*flags, [&](const std::string& f) { return EqualsIgnoreCase(f, flag); });
}

// ---- dates

int64_t DayOf(int64_t ms) {
  constexpr int64_t kDay = 86400000;
  return ms >= 0 ? ms / kDay : -((-ms + kDay - 1) / kDay);
}

int64_t LocalDayOf(int64_t ms, int32_t zone) {
  if (zone < -kMaxZoneMinutes || zone > kMaxZoneMinutes) zone = 0;
  return DayOf(ms + int64_t{zone} * 60000);
}

std::string FormatInternalDate(int64_t ms, int32_t zone) {
  if (zone < -kMaxZoneMinutes || zone > kMaxZoneMinutes) zone = 0;  // never written so
  const int64_t local = ms + int64_t{zone} * 60000;
  int64_t day = DayOf(local);
  int64_t secs = (local - day * 86400000) / 1000;
  Civil c = CivilFromDays(day);
  const int32_t offset = zone < 0 ? -zone : zone;
  char buf[64];
  std::snprintf(buf, sizeof buf, "\"%02u-%s-%04lld %02lld:%02lld:%02lld %c%02d%02d\"", c.day,
                std::string(kMonths[c.month - 1]).c_str(), static_cast<long long>(c.year),
                static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                static_cast<long long>(secs % 60), zone < 0 ? '-' : '+', offset / 60, offset % 60);
  return buf;
}

std::optional<DateTime> ParseDateTime(std::string_view s) {
  if (!s.empty() && s[0] == ' ') s.remove_prefix(1);  // date-day-fixed: SP DIGIT
  size_t sp = s.find(' ');
  if (sp == std::string_view::npos) return std::nullopt;
  std::optional<int64_t> day = ParseDate(s.substr(0, sp));
  std::string_view rest = s.substr(sp + 1);
  // "hh:mm:ss +zzzz"
  if (!day || rest.size() != 14 || rest[2] != ':' || rest[5] != ':' || rest[8] != ' ') {
    return std::nullopt;
  }
  std::optional<unsigned> h = Digits(rest.substr(0, 2), 2);
  std::optional<unsigned> m = Digits(rest.substr(3, 2), 2);
  std::optional<unsigned> sec = Digits(rest.substr(6, 2), 2);
  std::optional<unsigned> zh = Digits(rest.substr(10, 2), 2);
  std::optional<unsigned> zm = Digits(rest.substr(12, 2), 2);
  char sign = rest[9];
  if (!h || !m || !sec || !zh || !zm || (sign != '+' && sign != '-')) return std::nullopt;
  if (*h > 23 || *m > 59 || *sec > 60 || *zm > 59) return std::nullopt;
  int32_t zone = static_cast<int32_t>(*zh * 60 + *zm);
  if (sign == '-') zone = -zone;
  int64_t secs = *day * 86400 + *h * 3600 + *m * 60 + *sec - int64_t{zone} * 60;
  return DateTime{secs * 1000, zone};
}

std::optional<int64_t> ParseSearchDate(std::string_view text) { return ParseDate(text); }

// ---- mailbox names

std::optional<std::string> DecodeMailboxName(std::string_view wire) {
  std::string out;
  for (size_t i = 0; i < wire.size(); ++i) {
    char c = wire[i];
    if (c < 0x20 || c > 0x7e) return std::nullopt;
    if (c != '&') {
      out.push_back(c);
      continue;
    }
    size_t end = wire.find('-', i + 1);
    if (end == std::string_view::npos) return std::nullopt;
    if (end == i + 1) {
      out.push_back('&');
    } else if (!DecodeRun(wire.substr(i + 1, end - i - 1), &out)) {
      return std::nullopt;
    }
    i = end;
  }
  return out;
}

std::string EncodeMailboxName(std::string_view utf8) {
  std::string out;
  bool in_run = false;
  uint32_t bits = 0;
  int nbits = 0;
  for (size_t i = 0; i < utf8.size();) {
    uint32_t cp = NextCodePoint(utf8, &i);
    if (cp >= 0x20 && cp <= 0x7E) {
      if (in_run) FlushRun(&out, &bits, &nbits);
      in_run = false;
      out += cp == '&' ? "&-" : std::string(1, static_cast<char>(cp));
      continue;
    }
    if (!in_run) out.push_back('&');
    in_run = true;
    if (cp >= 0x10000) {
      PushUnit(&out, 0xD800 + ((cp - 0x10000) >> 10), &bits, &nbits);
      PushUnit(&out, 0xDC00 + ((cp - 0x10000) & 0x3FF), &bits, &nbits);
    } else {
      PushUnit(&out, cp, &bits, &nbits);
    }
  }
  if (in_run) FlushRun(&out, &bits, &nbits);
  return out;
}

std::string NormalizeInbox(std::string name) {
  if (name.size() >= 5 && EqualsIgnoreCase(std::string_view(name).substr(0, 5), "INBOX") &&
      (name.size() == 5 || name[5] == '/')) {
    name.replace(0, 5, "INBOX");
  }
  return name;
}

// ---- sets

std::string CompactSet(const std::vector<uint32_t>& numbers) {
  std::string out;
  for (size_t i = 0; i < numbers.size();) {
    size_t j = i;
    while (j + 1 < numbers.size() && numbers[j] != UINT32_MAX && numbers[j + 1] == numbers[j] + 1) {
      ++j;
    }
    if (!out.empty()) out.push_back(',');
    out += std::to_string(numbers[i]);
    if (j > i) out += ":" + std::to_string(numbers[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace porcupine::imap
