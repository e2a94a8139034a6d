#include "acme/http01.h"

#include <httplib.h>

#include "acme/protocol.h"

namespace porcupine::acme {

std::optional<std::string> ChallengeToken(const std::string& path) {
  constexpr std::string_view kPrefix = "/.well-known/acme-challenge/";
  if (path.rfind(kPrefix, 0) != 0) return std::nullopt;
  std::string token = path.substr(kPrefix.size());
  if (!ValidToken(token)) return std::nullopt;
  return token;
}

Result<std::unique_ptr<Http01Responder>> Http01Responder::Start(const std::string& host, int port,
                                                                Lookup lookup) {
  std::unique_ptr<Http01Responder> r(new Http01Responder());
  r->server_ = std::make_unique<httplib::Server>();
  httplib::Server& s = *r->server_;
  s.set_read_timeout(5, 0);
  s.set_write_timeout(5, 0);
  s.set_keep_alive_max_count(5);
  s.set_payload_max_length(1024);
  s.Get(".*", [lookup](const httplib::Request& req, httplib::Response& res) {
    std::optional<std::string> token = ChallengeToken(req.path);
    std::optional<std::string> answer = token ? lookup(*token) : std::nullopt;
    if (!answer) {
      res.status = 404;
      res.set_content("not found\n", "text/plain");
      return;
    }
    res.set_content(*answer, "application/octet-stream");
  });
  if (port == 0) {
    r->port_ = s.bind_to_any_port(host);
  } else if (s.bind_to_port(host, port)) {
    r->port_ = port;
  } else {
    r->port_ = -1;
  }
  if (r->port_ <= 0) {
    return Status::IoError("cannot bind " + host + ":" + std::to_string(port));
  }
  r->thread_ = std::thread([srv = r->server_.get()] { srv->listen_after_bind(); });
  return r;
}

Http01Responder::~Http01Responder() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace porcupine::acme
