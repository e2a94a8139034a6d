// Command-line lists: node addresses ("host:port,host:port") and process ids.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace porcupine::bench {

struct HostPort {
  std::string host;  // name or address; IPv6 without brackets
  uint16_t port = 0;
  // "host:port", with brackets around an IPv6 address.
  std::string ToString() const;
  bool operator==(const HostPort&) const = default;
};

// Parses a comma-separated list of "host:port" items ("[v6addr]:port" for
// IPv6); blanks around items are ignored. InvalidArgument names the bad item
// (missing or bad port, empty host, empty item). An empty list parses to an
// empty vector.
Result<std::vector<HostPort>> ParseAddressList(std::string_view list);

// Parses "PID,PID,..." (positive integers). Empty parses to empty.
Result<std::vector<int>> ParsePidList(std::string_view list);

// Reads the pids in `path`, separated by commas or whitespace (a node's pid
// file holds one). NotFound / InvalidArgument with the path in the message.
Result<std::vector<int>> ReadPidFile(const std::string& path);

}  // namespace porcupine::bench
