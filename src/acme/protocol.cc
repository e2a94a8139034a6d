#include "acme/protocol.h"

#include <cctype>

namespace porcupine::acme {
namespace {

std::string Str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string ProblemLine(const nlohmann::json& p) {
  if (!p.is_object()) return "";
  std::string type = Str(p, "type");
  constexpr std::string_view kPrefix = "urn:ietf:params:acme:error:";
  if (type.rfind(kPrefix, 0) == 0) type = type.substr(kPrefix.size());
  std::string detail = Str(p, "detail");
  if (type.empty()) return detail;
  return detail.empty() ? type : type + ": " + detail;
}

}  // namespace

Result<Directory> ParseDirectory(const nlohmann::json& j) {
  if (!j.is_object()) return Status::InvalidArgument("directory: not a JSON object");
  Directory d{Str(j, "newNonce"), Str(j, "newAccount"), Str(j, "newOrder")};
  if (d.new_nonce.empty()) return Status::InvalidArgument("directory: no newNonce");
  if (d.new_account.empty()) return Status::InvalidArgument("directory: no newAccount");
  if (d.new_order.empty()) return Status::InvalidArgument("directory: no newOrder");
  return d;
}

Result<Order> ParseOrder(const nlohmann::json& j) {
  if (!j.is_object()) return Status::InvalidArgument("order: not a JSON object");
  Order o;
  o.status = Str(j, "status");
  o.finalize = Str(j, "finalize");
  o.certificate = Str(j, "certificate");
  if (j.contains("error")) o.error = ProblemLine(j["error"]);
  if (auto it = j.find("authorizations"); it != j.end() && it->is_array()) {
    for (const auto& a : *it) {
      if (a.is_string()) o.authorizations.push_back(a.get<std::string>());
    }
  }
  if (o.status.empty()) return Status::InvalidArgument("order: no status");
  if (o.finalize.empty()) return Status::InvalidArgument("order: no finalize URL");
  return o;
}

OrderStep NextOrderStep(const std::string& status) {
  if (status == "pending") return OrderStep::kAuthorize;
  if (status == "ready") return OrderStep::kFinalize;
  if (status == "processing") return OrderStep::kWait;
  if (status == "valid") return OrderStep::kDownload;
  return OrderStep::kFail;
}

Result<Authorization> ParseAuthorization(const nlohmann::json& j, const std::string& type) {
  if (!j.is_object()) return Status::InvalidArgument("authorization: not a JSON object");
  Authorization a;
  a.status = Str(j, "status");
  if (auto it = j.find("identifier"); it != j.end() && it->is_object()) {
    a.identifier = Str(*it, "value");
  }
  if (auto it = j.find("challenges"); it != j.end() && it->is_array()) {
    for (const auto& c : *it) {
      if (!c.is_object() || Str(c, "type") != type) continue;
      a.challenge_url = Str(c, "url");
      a.token = Str(c, "token");
      a.challenge_status = Str(c, "status");
      if (c.contains("error")) a.error = ProblemLine(c["error"]);
      break;
    }
  }
  if (a.status.empty()) return Status::InvalidArgument("authorization: no status");
  if (a.status == "pending" && (a.challenge_url.empty() || !ValidToken(a.token))) {
    return Status::InvalidArgument("authorization of " + a.identifier + ": no usable " + type +
                                   " challenge offered");
  }
  return a;
}

std::string KeyAuthorization(const std::string& token, const std::string& thumbprint) {
  return token + "." + thumbprint;
}

bool ValidToken(const std::string& token) {
  if (token.empty() || token.size() > 256) return false;
  for (char c : token) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

std::string DescribeProblem(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string line = ProblemLine(j);
  if (!line.empty()) return line;
  std::string cut = body.substr(0, 200);
  for (char& c : cut) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return cut.empty() ? "(empty body)" : cut;
}

std::string ProblemType(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return "";
  std::string type = Str(j, "type");
  constexpr std::string_view kPrefix = "urn:ietf:params:acme:error:";
  return type.rfind(kPrefix, 0) == 0 ? type.substr(kPrefix.size()) : type;
}

std::optional<SplitUrl> SplitHttpUrl(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return std::nullopt;
  std::string s = url.substr(0, scheme);
  if (s != "https" && s != "http") return std::nullopt;
  size_t path = url.find('/', scheme + 3);
  if (path == scheme + 3) return std::nullopt;
  if (path == std::string::npos) return SplitUrl{url, "/"};
  return SplitUrl{url.substr(0, path), url.substr(path)};
}

}  // namespace porcupine::acme
