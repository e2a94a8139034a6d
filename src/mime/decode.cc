#include "mime/decode.h"

#include <gmime/gmime.h>

#include <memory>

#include "mime/header.h"

namespace porcupine::mime {
namespace {

struct GFree {
  void operator()(char* p) const { g_free(p); }
};
using GString = std::unique_ptr<char, GFree>;

// GMime takes NUL-terminated strings; a NUL inside a header cannot be text.
std::string CString(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\0') c = ' ';
  }
  return out;
}

std::string Take(char* p) {
  GString owned(p);
  return p ? std::string(p) : std::string();
}

std::string Guess8bit(std::string_view text) {
  return Take(g_mime_utils_decode_8bit(nullptr, text.data(), text.size()));
}

GMimeContentEncoding EncodingOf(std::string_view name) {
  if (EqualsIgnoreCase(name, "base64")) return GMIME_CONTENT_ENCODING_BASE64;
  if (EqualsIgnoreCase(name, "quoted-printable")) return GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
  if (EqualsIgnoreCase(name, "x-uuencode") || EqualsIgnoreCase(name, "uuencode")) {
    return GMIME_CONTENT_ENCODING_UUENCODE;
  }
  return GMIME_CONTENT_ENCODING_DEFAULT;
}

// Unfolded, NUL-free and valid UTF-8 (raw 8-bit text guessed first, so that
// it cannot mix with the UTF-8 of decoded encoded-words).
std::string PrepareHeader(std::string_view raw_value) {
  std::string text = CString(Unfold(raw_value));
  if (!g_utf8_validate(text.data(), static_cast<gssize>(text.size()), nullptr)) {
    text = Guess8bit(text);
  }
  return text;
}

}  // namespace

std::string DecodeHeaderText(std::string_view raw_value) {
  std::string text = PrepareHeader(raw_value);
  return Take(g_mime_utils_header_decode_text(nullptr, text.c_str()));
}

std::string DecodePhrase(std::string_view phrase) {
  std::string text = PrepareHeader(phrase);
  return Take(g_mime_utils_header_decode_phrase(nullptr, text.c_str()));
}

std::string DecodeTransferEncoding(std::string_view body, std::string_view encoding) {
  GMimeContentEncoding enc = EncodingOf(encoding);
  if (enc == GMIME_CONTENT_ENCODING_DEFAULT) return std::string(body);
  GMimeEncoding state;
  g_mime_encoding_init_decode(&state, enc);
  std::string out(g_mime_encoding_outlen(&state, body.size()) + 16, '\0');
  size_t n = g_mime_encoding_flush(&state, body.data(), body.size(), out.data());
  out.resize(n);
  return out;
}

std::string ToUtf8(std::string_view text, std::string_view charset) {
  if (g_utf8_validate(text.data(), static_cast<gssize>(text.size()), nullptr)) {
    if (charset.empty() || EqualsIgnoreCase(charset, "utf-8") ||
        EqualsIgnoreCase(charset, "us-ascii")) {
      return std::string(text);
    }
  }
  if (!charset.empty()) {
    std::string name = CString(charset);
    iconv_t cd = g_mime_iconv_open("UTF-8", name.c_str());
    if (cd != reinterpret_cast<iconv_t>(-1)) {
      GString converted(g_mime_iconv_strndup(cd, text.data(), text.size()));
      g_mime_iconv_close(cd);
      if (converted && g_utf8_validate(converted.get(), -1, nullptr)) {
        return std::string(converted.get());
      }
    }
  }
  return Guess8bit(text);
}

std::optional<ParsedDate> ParseDate(std::string_view raw_value) {
  std::string text = CString(Unfold(raw_value));
  GDateTime* dt = g_mime_utils_header_decode_date(text.c_str());
  if (!dt) return std::nullopt;
  ParsedDate date;
  date.utc_ms = static_cast<int64_t>(g_date_time_to_unix(dt)) * 1000;
  date.offset_minutes = static_cast<int32_t>(g_date_time_get_utc_offset(dt) / G_TIME_SPAN_MINUTE);
  g_date_time_unref(dt);
  return date;
}

}  // namespace porcupine::mime
