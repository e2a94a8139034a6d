#include "node/scram.h"

#include <gsasl.h>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <array>

namespace porcupine::node {
namespace {

constexpr char kMechanism[] = "SCRAM-SHA-256";
constexpr char kPrefix[] = "SCRAM-SHA-256$";
constexpr size_t kSaltBytes = 16;

// The process's gsasl context, made once; never freed (sessions may outlive
// any owner we could give it).
Gsasl* Context() {
  static Gsasl* ctx = [] {
    Gsasl* c = nullptr;
    return gsasl_init(&c) == GSASL_OK ? c : nullptr;
  }();
  return ctx;
}

std::string Base64(const char* data, size_t len) {
  return protocol::EncodeBase64(std::string_view(data, len));
}

// The parts of an RFC 5803 string, as gsasl's properties want them. gsasl
// 2.2 takes StoredKey and ServerKey in base64, whatever its header says
// ("hex-encoded"): it is what its server writes back into these properties
// after a login with a password, and hex keys fail every proof.
struct Secrets {
  std::string iterations;  // decimal
  std::string salt;        // base64
  std::string stored_key;  // base64
  std::string server_key;  // base64
};

std::optional<Secrets> ParseSecrets(std::string_view s) {
  if (!s.starts_with(kPrefix)) return std::nullopt;
  s.remove_prefix(sizeof(kPrefix) - 1);
  const size_t colon1 = s.find(':');
  const size_t dollar = s.find('$');
  const size_t colon2 = s.rfind(':');
  if (colon1 == s.npos || dollar == s.npos || colon2 == s.npos || !(colon1 < dollar) ||
      !(dollar < colon2)) {
    return std::nullopt;
  }
  Secrets out;
  out.iterations = std::string(s.substr(0, colon1));
  out.salt = std::string(s.substr(colon1 + 1, dollar - colon1 - 1));
  std::string stored, server, salt;
  if (out.iterations.empty() ||
      out.iterations.find_first_not_of("0123456789") != std::string::npos ||
      !protocol::DecodeBase64(out.salt, &salt) ||
      !protocol::DecodeBase64(s.substr(dollar + 1, colon2 - dollar - 1), &stored) ||
      !protocol::DecodeBase64(s.substr(colon2 + 1), &server) ||
      stored.size() != GSASL_HASH_SHA256_SIZE || server.size() != GSASL_HASH_SHA256_SIZE) {
    return std::nullopt;
  }
  out.stored_key = Base64(stored.data(), stored.size());
  out.server_key = Base64(server.data(), server.size());
  return out;
}

// Made-up secrets for a name that is no user: keyed digests of the name
// under a key made at start, so that the same name always gets the same salt
// (a changing salt would tell that it is made up).
Secrets DummySecrets(std::string_view name, unsigned iterations) {
  static const std::array<unsigned char, crypto_generichash_KEYBYTES> key = [] {
    std::array<unsigned char, crypto_generichash_KEYBYTES> k{};
    if (sodium_init() >= 0) randombytes_buf(k.data(), k.size());
    return k;
  }();
  auto digest = [&](std::string_view label, size_t len) {
    std::string out(len, '\0');
    std::string in = std::string(label) + '\0' + std::string(name);
    crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), len,
                       reinterpret_cast<const unsigned char*>(in.data()), in.size(), key.data(),
                       key.size());
    return out;
  };
  const std::string salt = digest("salt", kSaltBytes);
  const std::string stored = digest("stored", GSASL_HASH_SHA256_SIZE);
  const std::string server = digest("server", GSASL_HASH_SHA256_SIZE);
  return {std::to_string(iterations), Base64(salt.data(), salt.size()),
          Base64(stored.data(), stored.size()), Base64(server.data(), server.size())};
}

protocol::SaslReply Failure(Status status) {
  protocol::SaslReply r;
  r.kind = protocol::SaslReply::Kind::kFailure;
  r.status = std::move(status);
  return r;
}

}  // namespace

Result<std::string> ScramSecretsFromPassword(std::string_view password, unsigned iterations) {
  std::array<char, kSaltBytes> salt{};
  randombytes_buf(salt.data(), salt.size());
  std::array<char, GSASL_HASH_MAX_SIZE> salted{}, client_key{}, server_key{}, stored_key{};
  const std::string pw(password);
  const int rc = gsasl_scram_secrets_from_password(
      GSASL_HASH_SHA256, pw.c_str(), iterations, salt.data(), salt.size(), salted.data(),
      client_key.data(), server_key.data(), stored_key.data());
  sodium_memzero(const_cast<char*>(pw.data()), pw.size());
  // The salted password and the client key would log in as the user.
  sodium_memzero(salted.data(), salted.size());
  sodium_memzero(client_key.data(), client_key.size());
  if (rc != GSASL_OK) return Status::Internal(std::string("gsasl: ") + gsasl_strerror(rc));
  return std::string(kPrefix) + std::to_string(iterations) + ":" +
         Base64(salt.data(), salt.size()) + "$" +
         Base64(stored_key.data(), GSASL_HASH_SHA256_SIZE) + ":" +
         Base64(server_key.data(), GSASL_HASH_SHA256_SIZE);
}

std::optional<std::string> ScramClientUser(std::string_view m) {
  // gs2-header = gs2-cbind-flag "," [ authzid ] ","
  const size_t c1 = m.find(',');
  if (c1 == m.npos) return std::nullopt;
  const size_t c2 = m.find(',', c1 + 1);
  if (c2 == m.npos) return std::nullopt;
  std::string_view authzid = m.substr(c1 + 1, c2 - c1 - 1);
  std::string_view rest = m.substr(c2 + 1);
  if (!rest.starts_with("n=")) return std::nullopt;
  const size_t end = rest.find(',');
  std::string_view name = rest.substr(2, end == rest.npos ? rest.npos : end - 2);
  std::string user;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] != '=') {
      user += name[i];
    } else if (name.substr(i, 3) == "=2C") {
      user += ',';
      i += 2;
    } else if (name.substr(i, 3) == "=3D") {
      user += '=';
      i += 2;
    } else {
      return std::nullopt;
    }
  }
  if (user.empty()) return std::nullopt;
  if (!authzid.empty() && authzid != "a=" + std::string(name)) return std::nullopt;
  return user;
}

struct ScramServer::Exchange {
  ~Exchange() {
    if (session) gsasl_finish(session);
  }
  Gsasl_session* session = nullptr;
  std::string account;  // the throttle's key
  std::string user;     // canonical address; "" for a made-up user
};

ScramServer::ScramServer(mail::MailService& mail, std::string client, unsigned dummy_iterations)
    : mail_(mail), client_(std::move(client)), dummy_iterations_(dummy_iterations) {}

ScramServer::~ScramServer() = default;

asio::awaitable<protocol::SaslReply> ScramServer::Step(protocol::SaslStep step) {
  if (step.first) {
    exchange_.reset();
    co_return co_await First(std::move(step.response));
  }
  if (!exchange_) co_return Failure(Status::InvalidArgument("no SCRAM exchange in progress"));
  protocol::SaslReply reply = co_await Final(std::move(step.response));
  exchange_.reset();
  co_return reply;
}

asio::awaitable<protocol::SaslReply> ScramServer::First(std::string response) {
  std::string client_first;
  if (!protocol::DecodeBase64(response, &client_first)) {
    co_return Failure(Status::InvalidArgument("invalid base64"));
  }
  std::optional<std::string> login = ScramClientUser(client_first);
  if (!login) co_return Failure(Status::InvalidArgument("malformed SCRAM client-first message"));
  Result<mail::MailService::ScramAccount> account = co_await mail_.BeginScram(*login, client_);
  if (!account.ok()) co_return Failure(account.status());
  if (!account->user.empty() && account->secrets.empty()) {
    // The password was set before SCRAM existed. The exchange goes on with
    // made-up secrets and fails like a wrong password, counted by the
    // throttle: a distinct answer would tell which accounts exist.
    spdlog::info(
        "SCRAM-SHA-256 login for {} cannot succeed: its password was set before SCRAM "
        "secrets were kept (set it again)",
        account->user);
    account->user.clear();
  }
  std::optional<Secrets> secrets = account->user.empty()
                                       ? DummySecrets(account->account, dummy_iterations_)
                                       : ParseSecrets(account->secrets);
  if (!secrets) co_return Failure(Status::Internal("unreadable SCRAM secrets in the profile"));
  auto ex = std::make_unique<Exchange>();
  ex->account = std::move(account->account);
  ex->user = std::move(account->user);
  Gsasl* ctx = Context();
  if (ctx == nullptr || gsasl_server_start(ctx, kMechanism, &ex->session) != GSASL_OK) {
    co_return Failure(Status::Internal("gsasl: cannot start a SCRAM-SHA-256 session"));
  }
  // Set before the first step, so gsasl never needs a callback.
  gsasl_property_set(ex->session, GSASL_SCRAM_ITER, secrets->iterations.c_str());
  gsasl_property_set(ex->session, GSASL_SCRAM_SALT, secrets->salt.c_str());
  gsasl_property_set(ex->session, GSASL_SCRAM_STOREDKEY, secrets->stored_key.c_str());
  gsasl_property_set(ex->session, GSASL_SCRAM_SERVERKEY, secrets->server_key.c_str());
  char* out = nullptr;
  const int rc = gsasl_step64(ex->session, response.c_str(), &out);
  protocol::SaslReply reply;
  if (rc == GSASL_NEEDS_MORE && out != nullptr) {
    reply.kind = protocol::SaslReply::Kind::kChallenge;
    reply.data = out;
    exchange_ = std::move(ex);
  } else {
    reply = Failure(Status::InvalidArgument(std::string("SCRAM: ") + gsasl_strerror(rc)));
  }
  gsasl_free(out);
  co_return reply;
}

// The client's proof: gsasl checks it; the outcome is counted by the login
// throttle whatever it was (a malformed final message counts as a failure:
// it may be a guess).
asio::awaitable<protocol::SaslReply> ScramServer::Final(std::string response) {
  char* out = nullptr;
  const int rc = gsasl_step64(exchange_->session, response.c_str(), &out);
  const bool ok = rc == GSASL_OK && !exchange_->user.empty();
  std::string data = out != nullptr ? out : "";
  gsasl_free(out);
  Status gate = co_await mail_.FinishScram(client_, exchange_->account, ok);
  if (!gate.ok()) co_return Failure(gate);
  if (!ok) co_return Failure(Status::PermissionDenied("invalid credentials"));
  protocol::SaslReply reply;
  reply.kind = protocol::SaslReply::Kind::kSuccess;
  reply.data = std::move(data);
  reply.user = exchange_->user;
  co_return reply;
}

}  // namespace porcupine::node
