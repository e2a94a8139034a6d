// The pure parts of the ACME protocol (RFC 8555): reading the server's JSON
// objects and deciding the next step of an order. No I/O; the client
// (acme/client.h) sends what these decide.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace porcupine::acme {

// §7.1.1 the directory.
struct Directory {
  std::string new_nonce;
  std::string new_account;
  std::string new_order;
};
// InvalidArgument naming the missing field.
Result<Directory> ParseDirectory(const nlohmann::json& j);

// §7.1.3 an order.
struct Order {
  std::string status;  // pending, ready, processing, valid, invalid
  std::vector<std::string> authorizations;
  std::string finalize;
  std::string certificate;  // once valid
  std::string error;        // the problem, when invalid
};
Result<Order> ParseOrder(const nlohmann::json& j);

// What the client does next with an order in `status` (§7.1.6).
enum class OrderStep {
  kAuthorize,  // pending: answer the authorizations' challenges
  kFinalize,   // ready: send the CSR
  kWait,       // processing: poll the order again
  kDownload,   // valid: fetch the certificate
  kFail,       // invalid or unknown: give up on this order
};
OrderStep NextOrderStep(const std::string& status);

// §7.1.4 an authorization and its challenge of `type` ("http-01").
struct Authorization {
  std::string status;      // pending, valid, invalid, deactivated, expired, revoked
  std::string identifier;  // the DNS name
  std::string challenge_url;
  std::string token;
  std::string challenge_status;
  std::string error;  // the challenge's problem, if any
};
// InvalidArgument when the authorization offers no challenge of `type`
// while still pending.
Result<Authorization> ParseAuthorization(const nlohmann::json& j, const std::string& type);

// §8.1 token "." thumbprint of the account key.
std::string KeyAuthorization(const std::string& token, const std::string& thumbprint);

// A token may only hold base64url characters (§8.3): no path tricks.
bool ValidToken(const std::string& token);

// §6.7 a problem document as one line: "badNonce: JWS has an invalid
// anti-replay nonce" ("urn:ietf:params:acme:error:" dropped); the body
// itself, cut, when it is not a problem document.
std::string DescribeProblem(const std::string& body);
// The short type of a problem body ("badNonce"), "" when none.
std::string ProblemType(const std::string& body);

// "https://host:port/path?q" -> {"https://host:port", "/path?q"}.
struct SplitUrl {
  std::string origin;
  std::string path;
};
std::optional<SplitUrl> SplitHttpUrl(const std::string& url);

}  // namespace porcupine::acme
