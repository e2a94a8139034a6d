#include "admin/request_guard.h"

namespace porcupine::admin {

void RequestGuard::Start(Clock::time_point now) {
  read_deadline_ = now + limits_.header_timeout;
  write_started_ = false;
  in_head_ = true;
  head_bytes_ = 0;
  blank_line_state_ = 0;
  cut_ = Cut::kNone;
}

size_t RequestGuard::Admit(const char* data, size_t n, Clock::time_point now) {
  if (cut_ != Cut::kNone) return 0;
  if (!in_head_) return n;
  for (size_t i = 0; i < n; ++i) {
    if (++head_bytes_ > limits_.max_header_bytes) {
      cut_ = Cut::kHeaderSize;
      return 0;
    }
    // The head ends with an empty line; httplib ends it at "\r\n" alone on a
    // line (a bare "\n" line is skipped), so the end is "\n\r\n".
    char c = data[i];
    if (c == '\n') {
      if (blank_line_state_ == 2) {
        in_head_ = false;
        read_deadline_ = now + limits_.body_timeout;
        return n;  // what follows is body (or the next request), not head
      }
      blank_line_state_ = 1;
    } else if (c == '\r' && blank_line_state_ == 1) {
      blank_line_state_ = 2;
    } else {
      blank_line_state_ = 0;
    }
  }
  return n;
}

RequestGuard::Clock::time_point RequestGuard::WriteDeadline(Clock::time_point now) {
  if (!write_started_) {
    write_started_ = true;
    write_deadline_ = now + limits_.write_timeout;
  }
  return write_deadline_;
}

const char* CutName(RequestGuard::Cut cut) {
  switch (cut) {
    case RequestGuard::Cut::kHeaderTimeout:
      return "header_timeout";
    case RequestGuard::Cut::kBodyTimeout:
      return "body_timeout";
    case RequestGuard::Cut::kWriteTimeout:
      return "write_timeout";
    case RequestGuard::Cut::kHeaderSize:
      return "header_size";
    case RequestGuard::Cut::kNone:
      break;
  }
  return "";
}

}  // namespace porcupine::admin
