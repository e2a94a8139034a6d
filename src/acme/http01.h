// The HTTP-01 responder (RFC 8555 §8.3): answers
// GET /.well-known/acme-challenge/TOKEN with the key authorization the
// lookup returns, 404 for anything else. cpp-httplib's server on a thread of
// its own; it serves only this path, small and read-only.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "core/status.h"

namespace httplib {
class Server;
}

namespace porcupine::acme {

class Http01Responder {
 public:
  // token -> key authorization, nullopt when unknown. Called on the
  // responder's threads; must be thread-safe.
  using Lookup = std::function<std::optional<std::string>(const std::string& token)>;

  // Binds host:port (port 0: any free port) and serves until destroyed.
  // IoError when the address cannot be bound.
  static Result<std::unique_ptr<Http01Responder>> Start(const std::string& host, int port,
                                                        Lookup lookup);
  ~Http01Responder();  // stops serving and joins its thread
  Http01Responder(const Http01Responder&) = delete;
  Http01Responder& operator=(const Http01Responder&) = delete;

  int port() const { return port_; }

 private:
  Http01Responder() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// The token of a challenge path, nullopt for any other path.
std::optional<std::string> ChallengeToken(const std::string& path);

}  // namespace porcupine::acme
