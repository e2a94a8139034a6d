// `porcupine demo`: starts node processes on loopback with demo users, prints
// how to connect, and runs until Ctrl-C, then stops every node it started.
#pragma once

#include <string>

namespace porcupine::cli {

struct DemoOptions {
  int nodes = 3;         // node processes to start
  int base_port = 2525;  // node 1: SMTP base, POP3 base+1, admin base+2, cluster base+3
  std::string dir;       // data directory; "" = a new one under /tmp
};

// Returns the exit status. self: path of this executable.
int RunDemo(const DemoOptions& options, const char* self);

}  // namespace porcupine::cli
