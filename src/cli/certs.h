// `porcupine cluster certs`: a private CA and one certificate per node for
// mutual TLS between nodes and HTTPS on the admin API (docs/security.md).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace porcupine::cli {

struct CertsOptions {
  std::string out;                 // directory; created (mode 0700) if missing
  std::vector<std::string> nodes;  // node names: NAME.crt and NAME.key each
  // subjectAltNames of every node certificate besides the node's own name:
  // the addresses (or DNS names) other nodes and admin clients dial.
  std::vector<std::string> hosts = {"localhost", "127.0.0.1", "::1"};
  int days = 825;      // node certificates' validity (never past the CA's)
  int ca_days = 3650;  // a new CA's validity
};

// Creates out/ca.crt and out/ca.key unless both exist (then they sign the
// new certificates: adding a node to a running cluster), then
// out/NAME.crt and out/NAME.key per node. Keys are written mode 0600, via a
// temporary file and a rename. Refuses (InvalidArgument) a bad node name, a
// node whose files exist (keys are never overwritten) and a lone ca.crt or
// ca.key; nothing is written then. On success *report holds what was written
// and the config lines to use.
Status MakeClusterCerts(const CertsOptions& options, std::string* report);

}  // namespace porcupine::cli
