#include "acme/record.h"

#include <nlohmann/json.hpp>

namespace porcupine::acme {

std::string EncodeRecord(const Record& r) {
  nlohmann::json j = {
      {"version", Record::kVersion},
      {"account",
       {{"directory_url", r.account.directory_url},
        {"key_pem", r.account.key_pem},
        {"url", r.account.url}}},
      {"certificate",
       {{"domains", r.certificate.domains},
        {"cert_pem", r.certificate.cert_pem},
        {"key_pem", r.certificate.key_pem},
        {"not_after", r.certificate.not_after},
        {"issued_at", r.certificate.issued_at}}},
      {"challenges", r.challenges},
  };
  return j.dump();
}

Result<Record> DecodeRecord(const std::string& text) {
  Record r;
  if (text.empty()) return r;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Status::InvalidArgument("acme record: not a JSON object");
  if (j.value("version", 0) != Record::kVersion) {
    return Status::InvalidArgument("acme record: unknown version " +
                                   std::to_string(j.value("version", 0)));
  }
  try {
    const nlohmann::json& a = j.at("account");
    r.account.directory_url = a.value("directory_url", "");
    r.account.key_pem = a.value("key_pem", "");
    r.account.url = a.value("url", "");
    const nlohmann::json& c = j.at("certificate");
    r.certificate.domains = c.value("domains", std::vector<std::string>{});
    r.certificate.cert_pem = c.value("cert_pem", "");
    r.certificate.key_pem = c.value("key_pem", "");
    r.certificate.not_after = c.value("not_after", int64_t{0});
    r.certificate.issued_at = c.value("issued_at", int64_t{0});
    r.challenges = j.value("challenges", std::map<std::string, std::string>{});
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("acme record: ") + e.what());
  }
  return r;
}

}  // namespace porcupine::acme
