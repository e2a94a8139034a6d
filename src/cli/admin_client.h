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
  // address: host:port of a node's admin listener; token may be empty.
  AdminClient(std::string address, std::string token)
      : address_(std::move(address)), token_(std::move(token)) {}

  // Unavailable when the node cannot be reached.
  Result<AdminReply> Call(const std::string& method, const std::string& path,
                          const nlohmann::json* body = nullptr);

 private:
  std::string address_;
  std::string token_;
};

// Percent-encodes a path segment (addresses may hold '+', '%', ...).
std::string UrlEncode(const std::string& s);

}  // namespace porcupine::cli
