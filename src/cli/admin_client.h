// A small client of the admin HTTP API for the CLI subcommands.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"

namespace porcupine::cli {

struct AdminReply {
  int status = 0;
  nlohmann::json body;  // null when the body is not JSON
};

class AdminClient {
 public:
  // address: a node's admin listener as host:port (HTTP), http://host:port or
  // https://host:port. token may be empty. ca_file: PEM CA certificate(s)
  // that the server's certificate must chain to; setting it implies HTTPS.
  // HTTPS always verifies the certificate and that it names the host (with
  // the system's CAs when ca_file is empty).
  AdminClient(std::string address, std::string token, std::string ca_file = "");

  // Unavailable when the node cannot be reached or its certificate is refused.
  Result<AdminReply> Call(const std::string& method, const std::string& path,
                          const nlohmann::json* body = nullptr);

  bool https() const { return https_; }

 private:
  std::string host_port_;  // without the scheme
  bool https_ = false;
  std::string token_;
  std::string ca_file_;
};

// Percent-encodes a path segment (addresses may hold '+', '%', ...).
std::string UrlEncode(const std::string& s);

}  // namespace porcupine::cli
