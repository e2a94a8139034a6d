#include "cli/admin_client.h"

#include <httplib.h>

namespace porcupine::cli {

std::string UrlEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '@') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<AdminReply> AdminClient::Call(const std::string& method, const std::string& path,
                                     const nlohmann::json* body) {
  httplib::Client client("http://" + address_);
  client.set_connection_timeout(5);
  client.set_read_timeout(60);
  httplib::Headers headers;
  if (!token_.empty()) headers.emplace("Authorization", "Bearer " + token_);
  std::string payload = body ? body->dump() : "";
  httplib::Result res = method == "GET"      ? client.Get(path, headers)
                        : method == "DELETE" ? client.Delete(path, headers)
                        : method == "PUT" ? client.Put(path, headers, payload, "application/json")
                                          : client.Post(path, headers, payload, "application/json");
  if (!res) {
    return Status::Unavailable("cannot reach admin API at " + address_ + ": " +
                               httplib::to_string(res.error()));
  }
  AdminReply reply;
  reply.status = res->status;
  reply.body = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (reply.body.is_discarded()) reply.body = nullptr;
  return reply;
}

}  // namespace porcupine::cli
