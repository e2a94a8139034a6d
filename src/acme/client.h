// An ACME client (RFC 8555) for one certificate order with HTTP-01: account,
// order, challenges, finalize, download. HTTPS through cpp-httplib's OpenSSL
// client; blocking, so the driver runs it on a thread of its own.
//
// Not thread-safe: one Client per order attempt.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "acme/jws.h"
#include "acme/protocol.h"
#include "acme/record.h"
#include "core/status.h"

namespace porcupine::acme {

struct ClientOptions {
  std::string directory_url;  // the CA's directory (https://...)
  std::string ca_file;        // PEM roots to trust for the CA's API; "" = the system's
  std::string email;          // account contact; "" = none
  std::chrono::seconds request_timeout{30};       // one HTTP request
  std::chrono::seconds validation_deadline{120};  // challenges + issuance, polled
};

// What the driver does for the client.
struct ClientHooks {
  // Makes token -> key authorization answerable on every node (HTTP-01)
  // before the CA is asked to validate; {} withdraws them.
  std::function<Status(const std::map<std::string, std::string>&)> publish_challenges;
  // Keeps a newly registered account (key and URL) for later orders.
  std::function<Status(const Record::Account&)> save_account;
  // Waits `d` before polling again; false when the node is stopping.
  std::function<bool(std::chrono::milliseconds d)> wait;
};

struct Issued {
  std::vector<std::string> domains;
  std::string cert_pem;  // the chain the CA sent, leaf first
  std::string key_pem;
  int64_t not_after = 0;
};

class Client {
 public:
  Client(ClientOptions options, ClientHooks hooks)
      : options_(std::move(options)), hooks_(std::move(hooks)) {}

  // Orders a certificate for `domains` with `account` (registered first when
  // its URL is empty or it belongs to another directory; a key is made when
  // it has none). Unavailable for network failures and CA errors (the CA's
  // problem text included), Aborted when the node stops, DeadlineExceeded-
  // like Unavailable when validation does not finish in time.
  Result<Issued> Obtain(Record::Account account, const std::vector<std::string>& domains);

 private:
  struct Response {
    int status = 0;
    std::string body;
    std::string location;
    std::string retry_after;
  };
  Result<Response> Get(const std::string& url);
  // A signed POST (payload) or POST-as-GET (nullopt); retries a bad nonce.
  Result<Response> Post(const std::string& url, const std::optional<nlohmann::json>& payload,
                        const std::string& accept = "");
  Result<Response> Send(const std::string& method, const std::string& url, const std::string& body,
                        const std::string& accept);
  Status FetchNonce();
  Status Register(Record::Account& account);
  Status Authorize(const std::string& authz_url);
  Result<Order> PollOrder(const std::string& url, const std::string& until_not);
  std::chrono::milliseconds PollDelay(const Response& r) const;

  const ClientOptions options_;
  const ClientHooks hooks_;
  Directory dir_;
  std::optional<EcKey> key_;
  std::string kid_;
  std::string thumbprint_;
  std::string nonce_;
  std::chrono::steady_clock::time_point deadline_;
};

}  // namespace porcupine::acme
