#include "outbound/reply.h"

namespace porcupine::outbound {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads 1..3 digits at text[*pos]; false if there are none or more than 3.
bool ReadNumber(std::string_view text, size_t* pos, int* out) {
  size_t start = *pos;
  int value = 0;
  while (*pos < text.size() && IsDigit(text[*pos])) {
    if (*pos - start == 3) return false;
    value = value * 10 + (text[*pos] - '0');
    ++*pos;
  }
  if (*pos == start) return false;
  *out = value;
  return true;
}

}  // namespace

std::string EnhancedCode::ToString() const {
  return std::to_string(klass) + "." + std::to_string(subject) + "." + std::to_string(detail);
}

std::optional<EnhancedCode> ParseEnhancedCode(std::string_view text) {
  if (text.size() < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.') {
    return std::nullopt;
  }
  EnhancedCode code;
  code.klass = text[0] - '0';
  size_t pos = 2;
  if (!ReadNumber(text, &pos, &code.subject)) return std::nullopt;
  if (pos >= text.size() || text[pos] != '.') return std::nullopt;
  ++pos;
  if (!ReadNumber(text, &pos, &code.detail)) return std::nullopt;
  if (pos < text.size() && text[pos] != ' ') return std::nullopt;
  return code;
}

std::string Reply::Text() const {
  std::string out = std::to_string(code);
  for (const std::string& l : lines) out.append(" ").append(l);
  return out;
}

EnhancedCode Reply::StatusOrDefault() const {
  if (enhanced) return *enhanced;
  return EnhancedCode{Class(), 0, 0};
}

ReplyParser::ReplyParser(const ReplyLimits& limits) : limits_(limits), lines_(limits.max_line) {}

void ReplyParser::Clear() {
  lines_.Clear();
  partial_ = Reply();
}

Result<std::optional<Reply>> ReplyParser::Next() {
  if (!error_.empty()) return Status::InvalidArgument(error_);
  for (;;) {
    protocol::Line line;
    protocol::LineReader::Kind kind = lines_.Next(&line);
    if (kind == protocol::LineReader::Kind::kNeedMore) return std::optional<Reply>();
    if (kind == protocol::LineReader::Kind::kTooLong) {
      error_ = "reply line longer than " + std::to_string(limits_.max_line) + " bytes";
      return Status::InvalidArgument(error_);
    }
    std::string_view t = line.text;
    bool valid = t.size() >= 3 && t[0] >= '2' && t[0] <= '5' && t[1] >= '0' && t[1] <= '5' &&
                 IsDigit(t[2]) && (t.size() == 3 || t[3] == ' ' || t[3] == '-');
    if (!valid) {
      error_ = "malformed reply line: \"" + std::string(t.substr(0, 60)) + "\"";
      return Status::InvalidArgument(error_);
    }
    int code = (t[0] - '0') * 100 + (t[1] - '0') * 10 + (t[2] - '0');
    if (!partial_.lines.empty() && code != partial_.code) {
      error_ = "reply code changes inside a multi-line reply";
      return Status::InvalidArgument(error_);
    }
    if (partial_.lines.size() >= limits_.max_lines) {
      error_ = "reply longer than " + std::to_string(limits_.max_lines) + " lines";
      return Status::InvalidArgument(error_);
    }
    partial_.code = code;
    partial_.lines.emplace_back(t.size() > 4 ? t.substr(4) : std::string_view());
    if (t.size() > 3 && t[3] == '-') continue;
    Reply done = std::move(partial_);
    partial_ = Reply();
    std::optional<EnhancedCode> enhanced = ParseEnhancedCode(done.lines.front());
    if (enhanced && enhanced->klass == done.Class()) done.enhanced = enhanced;
    return std::optional<Reply>(std::move(done));
  }
}

}  // namespace porcupine::outbound
