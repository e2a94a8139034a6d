#include "protocol/common/line_reader.h"

#include <algorithm>

namespace porcupine::protocol {

void LineReader::Compact() {
  // Drop consumed bytes only when they dominate, so Next() stays amortised O(1).
  if (pos_ > 0 && pos_ * 2 >= buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
}

LineReader::Kind LineReader::Next(Line* out) {
  Compact();
  for (;;) {
    size_t lf = buf_.find('\n', pos_);
    if (discarding_) {
      if (lf == std::string::npos) {
        buf_.clear();
        pos_ = 0;
        return Kind::kNeedMore;
      }
      pos_ = lf + 1;
      discarding_ = false;
      continue;
    }
    if (lf == std::string::npos) {
      if (buffered() > max_line_) {
        // Too long already; report it once and skip the rest of the line.
        buf_.clear();
        pos_ = 0;
        discarding_ = true;
        return Kind::kTooLong;
      }
      return Kind::kNeedMore;
    }
    size_t len = lf + 1 - pos_;
    if (len > max_line_) {
      pos_ = lf + 1;
      return Kind::kTooLong;
    }
    size_t end = lf;
    bool crlf = end > pos_ && buf_[end - 1] == '\r';
    if (crlf) --end;
    std::string_view text(buf_.data() + pos_, end - pos_);
    out->text = text;
    out->bare_lf = !crlf;
    out->bare_cr = text.find('\r') != std::string_view::npos;
    pos_ = lf + 1;
    return Kind::kLine;
  }
}

std::string LineReader::TakeRaw(size_t n) {
  n = std::min(n, buffered());
  std::string out = buf_.substr(pos_, n);
  pos_ += n;
  return out;
}

}  // namespace porcupine::protocol
