#include "bench/endpoints.h"

#include <charconv>
#include <fstream>
#include <sstream>

namespace porcupine::bench {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

std::vector<std::string_view> Split(std::string_view list, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (true) {
    size_t c = list.find(sep, pos);
    out.push_back(Trim(list.substr(pos, c == std::string_view::npos ? c : c - pos)));
    if (c == std::string_view::npos) break;
    pos = c + 1;
  }
  return out;
}

template <typename Int>
bool ParseInt(std::string_view s, Int* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

Result<HostPort> ParseHostPort(std::string_view item) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("bad address \"" + std::string(item) +
                                   "\": " + std::string(why));
  };
  if (item.empty()) return bad("empty item");
  HostPort hp;
  std::string_view port;
  if (item.front() == '[') {
    size_t close = item.find(']');
    if (close == std::string_view::npos) return bad("missing ']'");
    hp.host = std::string(item.substr(1, close - 1));
    if (close + 1 >= item.size() || item[close + 1] != ':') return bad("missing port");
    port = item.substr(close + 2);
  } else {
    size_t colon = item.rfind(':');
    if (colon == std::string_view::npos) return bad("missing port (want host:port)");
    hp.host = std::string(item.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) return bad("IPv6 addresses need [brackets]");
    port = item.substr(colon + 1);
  }
  if (hp.host.empty()) return bad("empty host");
  uint32_t p = 0;
  if (!ParseInt(port, &p) || p == 0 || p > 65535) return bad("port must be 1-65535");
  hp.port = static_cast<uint16_t>(p);
  return hp;
}

}  // namespace

std::string HostPort::ToString() const {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<std::vector<HostPort>> ParseAddressList(std::string_view list) {
  std::vector<HostPort> out;
  if (Trim(list).empty()) return out;
  for (std::string_view item : Split(list, ',')) {
    Result<HostPort> hp = ParseHostPort(item);
    if (!hp.ok()) return hp.status();
    out.push_back(std::move(*hp));
  }
  return out;
}

Result<std::vector<int>> ParsePidList(std::string_view list) {
  std::vector<int> out;
  if (Trim(list).empty()) return out;
  for (std::string_view item : Split(list, ',')) {
    int pid = 0;
    if (!ParseInt(item, &pid) || pid <= 0) {
      return Status::InvalidArgument("bad pid \"" + std::string(item) + "\"");
    }
    out.push_back(pid);
  }
  return out;
}

Result<std::vector<int>> ReadPidFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot read pid file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  for (char& c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') c = ',';
  }
  std::vector<int> out;
  for (std::string_view item : Split(text, ',')) {
    if (item.empty()) continue;
    int pid = 0;
    if (!ParseInt(item, &pid) || pid <= 0) {
      return Status::InvalidArgument("bad pid \"" + std::string(item) + "\" in " + path);
    }
    out.push_back(pid);
  }
  if (out.empty()) return Status::InvalidArgument("no pid in " + path);
  return out;
}

}  // namespace porcupine::bench
