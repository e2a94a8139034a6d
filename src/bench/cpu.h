// CPU time of processes, for CPU-seconds per message.
#pragma once

#include <string_view>

#include "core/status.h"

namespace porcupine::bench {

// utime + stime in seconds from the text of /proc/PID/stat. The command name
// (field 2) may hold spaces and parentheses, so fields are counted after the
// last ')'. InvalidArgument when malformed.
Result<double> ParseProcStatCpu(std::string_view stat, long ticks_per_second);

// CPU seconds used so far by process `pid` (all its threads). NotFound when
// the process is gone or unreadable.
Result<double> ProcessCpuSeconds(int pid);

// CPU seconds used so far by this process (user + system, all threads).
double SelfCpuSeconds();

}  // namespace porcupine::bench
