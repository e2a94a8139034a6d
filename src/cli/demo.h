// `porcupine demo`: starts node processes on loopback with demo users, prints
// how to connect, and runs until Ctrl-C, then stops every node it started.
// TLS everywhere: a demo CA (in DIR/certs) certifies every node for its mail
// listeners, mutual TLS between the nodes and HTTPS on the admin API.
#pragma once

#include <string>

namespace porcupine::cli {

struct DemoOptions {
  int nodes = 3;  // node processes to start
  // node 1: SMTP base, POP3 +1, admin +2, cluster +3, IMAP +4, submission +5,
  // submissions +6, IMAPS +7, POP3S +8; node i adds 10 * (i - 1).
  int base_port = 2525;
  std::string dir;  // data directory; "" = a new one under /tmp
};

// Returns the exit status. self: path of this executable.
int RunDemo(const DemoOptions& options, const char* self);

}  // namespace porcupine::cli
