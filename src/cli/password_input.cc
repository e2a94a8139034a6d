#include "cli/password_input.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

namespace porcupine::cli {
namespace {

// Reads up to the first LF (dropped, with a CR before it) or the end of
// input. *complete: an LF was read. false when the read failed (errno set).
// More than kMaxPasswordBytes are read on to the line's end and reported as
// *too_long, so that the rest of an overlong line is never taken for more.
bool ReadLine(int fd, std::string* line, bool* complete, bool* too_long) {
  line->clear();
  *complete = false;
  *too_long = false;
  char ch = 0;
  for (;;) {
    const ssize_t n = read(fd, &ch, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    if (ch == '\n') {
      *complete = true;
      break;
    }
    if (line->size() <= kMaxPasswordBytes) {
      line->push_back(ch);
    } else {
      *too_long = true;
    }
  }
  if (!line->empty() && line->back() == '\r') line->pop_back();
  *too_long = *too_long || line->size() > kMaxPasswordBytes;
  return true;
}

// The terminal modes to put back when a signal ends the process while echo
// is off; only async-signal-safe calls touch them.
struct termios g_saved_modes;
volatile sig_atomic_t g_echo_off = 0;
constexpr std::array<int, 4> kEndingSignals = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

extern "C" void RestoreModesAndDie(int sig) {
  if (g_echo_off) tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_modes);
  signal(sig, SIG_DFL);
  raise(sig);
}

// Turns echo off on standard input (a terminal) for its lifetime. The line
// end is still echoed (ECHONL), so the next output starts on a new line.
class EchoOff {
 public:
  EchoOff() {
    if (tcgetattr(STDIN_FILENO, &g_saved_modes) != 0) return;
    struct sigaction sa {};
    sa.sa_handler = RestoreModesAndDie;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < kEndingSignals.size(); ++i) {
      sigaction(kEndingSignals[i], &sa, &previous_[i]);
    }
    struct termios quiet = g_saved_modes;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHOE | ECHOK);
    quiet.c_lflag |= ECHONL;
    g_echo_off = 1;
    ok_ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
  }
  ~EchoOff() {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_modes);
    g_echo_off = 0;
    for (size_t i = 0; i < kEndingSignals.size(); ++i) {
      sigaction(kEndingSignals[i], &previous_[i], nullptr);
    }
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;
  bool ok() const { return ok_; }

 private:
  bool ok_ = false;
  std::array<struct sigaction, kEndingSignals.size()> previous_{};
};

Result<std::string> AskOnce(const std::string& prompt) {
  EchoOff quiet;
  if (!quiet.ok()) return Status::IoError(std::string("cannot turn echo off: ") + strerror(errno));
  std::fputs(prompt.c_str(), stderr);
  std::fflush(stderr);
  std::string line;
  bool complete = false;
  bool too_long = false;
  if (!ReadLine(STDIN_FILENO, &line, &complete, &too_long)) {
    return Status::IoError(std::string("cannot read the password: ") + strerror(errno));
  }
  if (!complete) return Status::InvalidArgument("no password given (input ended)");
  if (too_long) {
    return Status::InvalidArgument(
        fmt::format("the password is longer than {} bytes", kMaxPasswordBytes));
  }
  return line;
}

}  // namespace

Result<std::string> ReadPasswordFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IoError(fmt::format("{}: {}", path, strerror(errno)));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return Status::IoError(fmt::format("{}: {}", path, strerror(err)));
  }
  if (S_ISREG(st.st_mode) && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    close(fd);
    return Status::PermissionDenied(
        fmt::format("{}: other users may read or change it (mode {:04o}); run chmod 600 {}", path,
                    st.st_mode & 07777, path));
  }
  std::string line;
  bool complete = false;
  bool too_long = false;
  const bool read_ok = ReadLine(fd, &line, &complete, &too_long);
  const int err = errno;
  close(fd);
  if (!read_ok) return Status::IoError(fmt::format("{}: {}", path, strerror(err)));
  if (too_long) {
    return Status::InvalidArgument(
        fmt::format("{}: the password is longer than {} bytes", path, kMaxPasswordBytes));
  }
  if (line.empty()) return Status::InvalidArgument(path + ": the first line is empty");
  return line;
}

Result<std::string> PromptPassword(const std::string& prompt, bool confirm) {
  if (!isatty(STDIN_FILENO)) return Status::FailedPrecondition("standard input is not a terminal");
  Result<std::string> first = AskOnce(prompt);
  if (!first.ok()) return first;
  if (first->empty()) return Status::InvalidArgument("the password is empty");
  if (!confirm) return first;
  Result<std::string> again = AskOnce("Retype the password: ");
  if (!again.ok()) return again;
  if (*again != *first) return Status::InvalidArgument("the passwords differ");
  return first;
}

Result<std::string> ObtainPassword(const PasswordOptions& options, const std::string& address) {
  if (options.password_given) return options.password;
  if (!options.file.empty()) return ReadPasswordFile(options.file);
  Result<std::string> typed = PromptPassword("Password for " + address + ": ", true);
  if (typed.status().code() == Code::kFailedPrecondition) {
    return Status::InvalidArgument(
        "no password: give --password-file FILE, or run from a terminal to be asked");
  }
  return typed;
}

}  // namespace porcupine::cli
