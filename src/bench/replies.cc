#include "bench/replies.h"

#include <strings.h>

namespace porcupine::bench {

void LineBuffer::Feed(std::string_view bytes) {
  // Compact once the consumed prefix dominates, so memory stays bounded by
  // the unconsumed bytes plus one read.
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

Result<std::optional<std::string_view>> LineBuffer::NextLine() {
  size_t lf = buf_.find('\n', pos_ + scan_);
  if (lf == std::string::npos) {
    scan_ = buf_.size() - pos_;
    if (scan_ >= max_line_) return Status::InvalidArgument("reply line too long");
    return std::optional<std::string_view>();
  }
  if (lf + 1 - pos_ > max_line_) return Status::InvalidArgument("reply line too long");
  std::string_view line(buf_.data() + pos_, lf - pos_);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos_ = lf + 1;
  scan_ = 0;
  return std::optional<std::string_view>(line);
}

std::string SmtpReply::Text() const {
  std::string out = std::to_string(code);
  for (const std::string& l : lines) out.append(" ").append(l);
  return out;
}

bool SmtpReply::HasKeyword(std::string_view keyword) const {
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view l = lines[i];
    std::string_view word = l.substr(0, l.find(' '));
    if (word.size() == keyword.size() &&
        strncasecmp(word.data(), keyword.data(), word.size()) == 0) {
      return true;
    }
  }
  return false;
}

Result<std::optional<SmtpReply>> SmtpReplyParser::Next() {
  while (true) {
    Result<std::optional<std::string_view>> next = lines_.NextLine();
    if (!next.ok()) return next.status();
    if (!next->has_value()) return std::optional<SmtpReply>();
    std::string_view line = **next;
    bool digits = line.size() >= 3 && line[0] >= '2' && line[0] <= '5' && line[1] >= '0' &&
                  line[1] <= '9' && line[2] >= '0' && line[2] <= '9';
    if (!digits || (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
      return Status::InvalidArgument("malformed SMTP reply line: " +
                                     std::string(line.substr(0, 80)));
    }
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (!partial_.lines.empty() && code != partial_.code) {
      return Status::InvalidArgument("SMTP reply changes code mid-reply");
    }
    if (partial_.lines.size() >= limits_.max_smtp_lines) {
      return Status::InvalidArgument("SMTP reply has too many lines");
    }
    partial_.code = code;
    partial_.lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view());
    if (line.size() > 3 && line[3] == '-') continue;
    SmtpReply done = std::move(partial_);
    partial_ = SmtpReply();
    return std::optional<SmtpReply>(std::move(done));
  }
}

Result<std::optional<Pop3Reply>> Pop3ReplyParser::Next(bool multiline) {
  if (!partial_) {
    Result<std::optional<std::string_view>> next = lines_.NextLine();
    if (!next.ok()) return next.status();
    if (!next->has_value()) return std::optional<Pop3Reply>();
    std::string_view line = **next;
    Pop3Reply r;
    if (line.starts_with("+OK")) {
      r.ok = true;
      line.remove_prefix(3);
    } else if (line.starts_with("-ERR")) {
      line.remove_prefix(4);
    } else {
      return Status::InvalidArgument("malformed POP3 status line: " +
                                     std::string(line.substr(0, 80)));
    }
    if (!line.empty() && line[0] == ' ') line.remove_prefix(1);
    r.text = std::string(line);
    if (!r.ok || !multiline) return std::optional<Pop3Reply>(std::move(r));
    partial_ = std::move(r);
  }
  while (true) {
    Result<std::optional<std::string_view>> next = lines_.NextLine();
    if (!next.ok()) return next.status();
    if (!next->has_value()) return std::optional<Pop3Reply>();
    std::string_view line = **next;
    if (line == ".") break;
    if (line.starts_with('.')) line.remove_prefix(1);  // RFC 1939 §3 byte-stuffing
    if (partial_->body.size() + line.size() + 2 > limits_.max_body) {
      return Status::InvalidArgument("POP3 multi-line reply too large");
    }
    partial_->body.append(line).append("\r\n");
    ++partial_->body_lines;
  }
  Pop3Reply done = std::move(*partial_);
  partial_.reset();
  return std::optional<Pop3Reply>(std::move(done));
}

}  // namespace porcupine::bench
