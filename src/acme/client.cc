#include "acme/client.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "net/pki.h"

namespace porcupine::acme {
namespace {

constexpr int kNonceRetries = 3;
constexpr auto kPollMin = std::chrono::milliseconds(500);
constexpr auto kPollMax = std::chrono::seconds(10);

nlohmann::json ParseJson(const std::string& body) {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

}  // namespace

Result<Client::Response> Client::Send(const std::string& method, const std::string& url,
                                      const std::string& body, const std::string& accept) {
  std::optional<SplitUrl> split = SplitHttpUrl(url);
  if (!split) return Status::InvalidArgument("not an http(s) URL: " + url);
  httplib::Client cli(split->origin);
  const auto t = static_cast<time_t>(options_.request_timeout.count());
  cli.set_connection_timeout(t, 0);
  cli.set_read_timeout(t, 0);
  cli.set_write_timeout(t, 0);
  cli.enable_server_certificate_verification(true);
  if (!options_.ca_file.empty()) cli.set_ca_cert_path(options_.ca_file.c_str());
  httplib::Headers headers = {{"User-Agent", "porcupine-acme/1"}};
  if (!accept.empty()) headers.emplace("Accept", accept);
  httplib::Result res = method == "GET" ? cli.Get(split->path.c_str(), headers)
                        : method == "HEAD"
                            ? cli.Head(split->path.c_str(), headers)
                            : cli.Post(split->path.c_str(), headers, body, "application/jose+json");
  if (!res) {
    return Status::Unavailable(method + " " + url + ": " + httplib::to_string(res.error()));
  }
  Response r;
  r.status = res->status;
  r.body = res->body;
  r.location = res->get_header_value("Location");
  r.retry_after = res->get_header_value("Retry-After");
  std::string nonce = res->get_header_value("Replay-Nonce");
  if (!nonce.empty()) nonce_ = nonce;
  return r;
}

Result<Client::Response> Client::Get(const std::string& url) {
  Result<Response> r = Send("GET", url, "", "");
  if (r.ok() && r->status >= 400) {
    return Status::Unavailable("GET " + url + ": HTTP " + std::to_string(r->status) + ": " +
                               DescribeProblem(r->body));
  }
  return r;
}

Status Client::FetchNonce() {
  Result<Response> r = Send("HEAD", dir_.new_nonce, "", "");
  if (!r.ok()) return r.status();
  if (nonce_.empty()) return Status::Unavailable("newNonce: no Replay-Nonce header");
  return Status::Ok();
}

Result<Client::Response> Client::Post(const std::string& url,
                                      const std::optional<nlohmann::json>& payload,
                                      const std::string& accept) {
  for (int attempt = 0;; ++attempt) {
    if (nonce_.empty()) PORCUPINE_RETURN_IF_ERROR(FetchNonce());
    JwsHeader h{nonce_, url, kid_};
    nonce_.clear();  // each nonce is good for one request
    Result<nlohmann::json> jws = SignJws(*key_, h, payload);
    if (!jws.ok()) return jws.status();
    Result<Response> r = Send("POST", url, jws->dump(), accept);
    if (!r.ok()) return r;
    if (r->status < 400) return r;
    // A stale nonce is the server's way of saying "again" (RFC 8555 §6.5).
    if (ProblemType(r->body) == "badNonce" && attempt < kNonceRetries) continue;
    return Status::Unavailable("POST " + url + ": HTTP " + std::to_string(r->status) + ": " +
                               DescribeProblem(r->body));
  }
}

Status Client::Register(Record::Account& account) {
  nlohmann::json payload = {{"termsOfServiceAgreed", true}};
  if (!options_.email.empty()) payload["contact"] = {"mailto:" + options_.email};
  kid_.clear();
  Result<Response> r = Post(dir_.new_account, payload);
  if (!r.ok()) return Status(r.status().code(), "newAccount: " + r.status().message());
  if (r->location.empty()) return Status::Unavailable("newAccount: no account URL (Location)");
  account.url = r->location;
  account.directory_url = options_.directory_url;
  kid_ = account.url;
  spdlog::info("acme: account {} registered at {}", account.url, options_.directory_url);
  if (hooks_.save_account) {
    Status st = hooks_.save_account(account);
    if (!st.ok()) spdlog::warn("acme: the new account could not be stored: {}", st.ToString());
  }
  return Status::Ok();
}

std::chrono::milliseconds Client::PollDelay(const Response& r) const {
  std::chrono::milliseconds d = kPollMin;
  if (!r.retry_after.empty() &&
      r.retry_after.find_first_not_of("0123456789") == std::string::npos &&
      r.retry_after.size() < 6) {
    d = std::chrono::seconds(std::stoi(r.retry_after));
  }
  return std::clamp<std::chrono::milliseconds>(d, kPollMin, kPollMax);
}

Status Client::Authorize(const std::string& authz_url) {
  Result<Response> r = Post(authz_url, std::nullopt);
  if (!r.ok()) return r.status();
  Result<Authorization> a = ParseAuthorization(ParseJson(r->body), "http-01");
  if (!a.ok()) return Status::Unavailable(a.status().message());
  if (a->status == "valid") return Status::Ok();
  if (a->status != "pending") {
    return Status::Unavailable("authorization of " + a->identifier + " is " + a->status +
                               (a->error.empty() ? "" : ": " + a->error));
  }
  if (a->challenge_status == "pending") {
    Result<Response> c = Post(a->challenge_url, nlohmann::json::object());
    if (!c.ok()) return c.status();
  }
  while (std::chrono::steady_clock::now() < deadline_) {
    if (!hooks_.wait(PollDelay(*r))) return Status::Aborted("node is stopping");
    r = Post(authz_url, std::nullopt);
    if (!r.ok()) return r.status();
    a = ParseAuthorization(ParseJson(r->body), "http-01");
    if (!a.ok()) return Status::Unavailable(a.status().message());
    if (a->status == "valid") return Status::Ok();
    if (a->status != "pending") {
      return Status::Unavailable("http-01 validation of " + a->identifier +
                                 " failed: " + (a->error.empty() ? a->status : a->error));
    }
  }
  return Status::Unavailable("authorization of " + a->identifier + " not done in time");
}

// Polls the order while its status is `until_not`.
Result<Order> Client::PollOrder(const std::string& url, const std::string& until_not) {
  while (true) {
    Result<Response> r = Post(url, std::nullopt);
    if (!r.ok()) return r.status();
    Result<Order> o = ParseOrder(ParseJson(r->body));
    if (!o.ok()) return Status::Unavailable(o.status().message());
    if (o->status != until_not) return o;
    if (std::chrono::steady_clock::now() >= deadline_) {
      return Status::Unavailable("order still " + until_not + " at the deadline");
    }
    if (!hooks_.wait(PollDelay(*r))) return Status::Aborted("node is stopping");
  }
}

Result<Issued> Client::Obtain(Record::Account account, const std::vector<std::string>& domains) {
  deadline_ = std::chrono::steady_clock::now() + options_.validation_deadline;
  Result<Response> d = Get(options_.directory_url);
  if (!d.ok()) return Status(d.status().code(), "directory: " + d.status().message());
  Result<Directory> dir = ParseDirectory(ParseJson(d->body));
  if (!dir.ok()) return Status::Unavailable(dir.status().message());
  dir_ = *dir;

  if (account.key_pem.empty() || account.directory_url != options_.directory_url) {
    Result<EcKey> k = EcKey::Generate();
    if (!k.ok()) return k.status();
    Result<std::string> pem = k->ToPem();
    if (!pem.ok()) return pem.status();
    account = Record::Account{options_.directory_url, *pem, ""};
  }
  Result<EcKey> key = EcKey::FromPem(account.key_pem);
  if (!key.ok()) return Status(key.status().code(), "account key: " + key.status().message());
  key_ = *key;
  Result<std::string> thumb = JwkThumbprint(key_->Jwk());
  if (!thumb.ok()) return thumb.status();
  thumbprint_ = *thumb;
  kid_ = account.url;
  if (kid_.empty()) PORCUPINE_RETURN_IF_ERROR(Register(account));

  nlohmann::json ids = nlohmann::json::array();
  for (const std::string& name : domains) ids.push_back({{"type", "dns"}, {"value", name}});
  Result<Response> created = Post(dir_.new_order, nlohmann::json{{"identifiers", ids}});
  if (!created.ok())
    return Status(created.status().code(), "newOrder: " + created.status().message());
  const std::string order_url = created->location;
  Result<Order> order = ParseOrder(ParseJson(created->body));
  if (!order.ok()) return Status::Unavailable(order.status().message());
  if (order_url.empty()) return Status::Unavailable("newOrder: no order URL (Location)");

  if (NextOrderStep(order->status) == OrderStep::kAuthorize) {
    // Every node must be able to answer before the CA looks.
    std::map<std::string, std::string> answers;
    for (const std::string& url : order->authorizations) {
      Result<Response> r = Post(url, std::nullopt);
      if (!r.ok()) return r.status();
      Result<Authorization> a = ParseAuthorization(ParseJson(r->body), "http-01");
      if (!a.ok()) return Status::Unavailable(a.status().message());
      if (a->status == "pending") answers[a->token] = KeyAuthorization(a->token, thumbprint_);
    }
    PORCUPINE_RETURN_IF_ERROR(hooks_.publish_challenges(answers));
    for (const std::string& url : order->authorizations) {
      PORCUPINE_RETURN_IF_ERROR(Authorize(url));
    }
    order = PollOrder(order_url, "pending");
    if (!order.ok()) return order.status();
  }

  Result<EcKey> cert_key = EcKey::Generate();
  if (!cert_key.ok()) return cert_key.status();
  // Only a certificate for our CSR matches cert_key: an order must pass
  // through "ready" here.
  if (NextOrderStep(order->status) != OrderStep::kFinalize) {
    return Status::Unavailable("order is " + order->status + " before finalize" +
                               (order->error.empty() ? "" : ": " + order->error));
  }
  {
    Result<std::string> csr = MakeCsrDer(*cert_key, domains);
    if (!csr.ok()) return csr.status();
    Result<Response> f = Post(order->finalize, nlohmann::json{{"csr", Base64Url(*csr)}});
    if (!f.ok()) return Status(f.status().code(), "finalize: " + f.status().message());
    order = PollOrder(order_url, "processing");
    if (!order.ok()) return order.status();
    order = order->status == "ready" ? PollOrder(order_url, "ready") : order;
    if (!order.ok()) return order.status();
  }
  if (NextOrderStep(order->status) != OrderStep::kDownload || order->certificate.empty()) {
    return Status::Unavailable("order is " + order->status +
                               (order->error.empty() ? "" : ": " + order->error));
  }
  Result<Response> cert =
      Post(order->certificate, std::nullopt, "application/pem-certificate-chain");
  if (!cert.ok()) return Status(cert.status().code(), "certificate: " + cert.status().message());
  Result<net::CertInfo> info = net::DescribeCert(cert->body);
  if (!info.ok()) return Status::Unavailable("certificate: " + info.status().message());
  Result<std::string> key_pem = cert_key->ToPem();
  if (!key_pem.ok()) return key_pem.status();
  return Issued{domains, cert->body, *key_pem, info->not_after_unix};
}

}  // namespace porcupine::acme
