#include "bench/cpu.h"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

namespace porcupine::bench {

Result<double> ParseProcStatCpu(std::string_view stat, long ticks_per_second) {
  size_t close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) {
    return Status::InvalidArgument("malformed /proc stat");
  }
  std::string_view rest = stat.substr(close + 1);
  // After the name: state(3) ppid pgrp session tty_nr tpgid flags minflt
  // cminflt majflt cmajflt utime(14) stime(15).
  unsigned long long values[2] = {0, 0};
  int field = 2;
  size_t pos = 0;
  while (field < 15) {
    while (pos < rest.size() && rest[pos] == ' ') ++pos;
    size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) end = rest.size();
    if (pos >= end) return Status::InvalidArgument("short /proc stat");
    ++field;
    if (field == 14 || field == 15) {
      auto [p, ec] = std::from_chars(rest.data() + pos, rest.data() + end, values[field - 14]);
      if (ec != std::errc() || p != rest.data() + end) {
        return Status::InvalidArgument("bad cpu field in /proc stat");
      }
    }
    pos = end;
  }
  return static_cast<double>(values[0] + values[1]) / static_cast<double>(ticks_per_second);
}

Result<double> ProcessCpuSeconds(int pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  std::ifstream in(path);
  if (!in) return Status::NotFound("process " + std::to_string(pid) + " is gone");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseProcStatCpu(ss.str(), ::sysconf(_SC_CLK_TCK));
}

double SelfCpuSeconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

}  // namespace porcupine::bench
