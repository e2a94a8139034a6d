#include "bench/stats.h"

#include <algorithm>

namespace porcupine::bench {

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kConnect:
      return "connect";
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kDisconnect:
      return "disconnect";
    case ErrorKind::kProtocol:
      return "protocol";
    case ErrorKind::kSmtp4xx:
      return "smtp_4xx";
    case ErrorKind::kSmtp5xx:
      return "smtp_5xx";
    case ErrorKind::kPop3Err:
      return "pop3_err";
  }
  return "unknown";
}

std::string_view OpName(Op op) {
  switch (op) {
    case Op::kSmtpConnect:
      return "smtp_connect";
    case Op::kSmtpDeliver:
      return "smtp_deliver";
    case Op::kPop3Session:
      return "pop3_session";
    case Op::kPop3Retr:
      return "pop3_retr";
  }
  return "unknown";
}

void ErrorSamples::Add(const Fault& fault) {
  std::string line = std::string(ErrorKindName(fault.kind)) + ": " + fault.detail;
  std::lock_guard<std::mutex> lock(mu_);
  if (samples_.size() >= max_) return;
  if (std::find(samples_.begin(), samples_.end(), line) != samples_.end()) return;
  samples_.push_back(std::move(line));
}

std::vector<std::string> ErrorSamples::Take() const {
  std::lock_guard<std::mutex> lock(mu_);
  return samples_;
}

}  // namespace porcupine::bench
