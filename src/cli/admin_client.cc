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

AdminClient::AdminClient(std::string address, std::string token, std::string ca_file)
    : token_(std::move(token)), ca_file_(std::move(ca_file)) {
  https_ = !ca_file_.empty();
  if (address.rfind("https://", 0) == 0) {
    https_ = true;
    address = address.substr(8);
  } else if (address.rfind("http://", 0) == 0) {
    address = address.substr(7);
  }
  while (!address.empty() && address.back() == '/') address.pop_back();
  host_port_ = std::move(address);
}

Result<AdminReply> AdminClient::Call(const std::string& method, const std::string& path,
                                     const nlohmann::json* body) {
  const std::string url = (https_ ? "https://" : "http://") + host_port_;
  httplib::Client client(url);
  if (https_) {
    client.enable_server_certificate_verification(true);
    if (!ca_file_.empty()) client.set_ca_cert_path(ca_file_.c_str());
  }
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
    std::string why = httplib::to_string(res.error());
    if (res.error() == httplib::Error::SSLServerVerification) {
      why += ca_file_.empty() ? " (give the CA with --ca-file)"
                              : " (not signed by " + ca_file_ + ", or it does not name the host)";
    }
    return Status::Unavailable("cannot reach admin API at " + url + ": " + why);
  }
  AdminReply reply;
  reply.status = res->status;
  reply.body = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (reply.body.is_discarded()) reply.body = nullptr;
  return reply;
}

}  // namespace porcupine::cli
