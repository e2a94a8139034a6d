#include "outbound/dns_resolver.h"

#include <arpa/inet.h>
#include <unbound.h>
#include <unistd.h>

#include <cctype>

#include "core/async.h"

namespace porcupine::outbound {
namespace {

constexpr int kTypeA = 1;
constexpr int kTypeMx = 15;
constexpr int kTypeAaaa = 28;
constexpr int kClassIn = 1;
constexpr int kRcodeNxDomain = 3;

// A host name in uncompressed wire format (libunbound decompresses the
// names in MX rdata) as dotted text without the final dot; "" is the root.
// false when malformed or when a label holds anything but letters, digits,
// '-' and '_' (such a name could not be looked up as text anyway).
bool ParseWireName(const unsigned char* p, size_t len, std::string* out) {
  out->clear();
  size_t i = 0;
  while (i < len) {
    size_t label = p[i++];
    if (label == 0) return i == len && out->size() <= 253;
    if (label > 63 || i + label > len) return false;  // also refuses compression pointers
    if (!out->empty()) out->push_back('.');
    for (size_t k = 0; k < label; ++k) {
      unsigned char c = p[i + k];
      if (!std::isalnum(c) && c != '-' && c != '_') return false;
      out->push_back(static_cast<char>(c));
    }
    i += label;
  }
  return false;
}

// The status of a finished query, before its records are read.
LookupStatus StatusOf(int err, const ub_result* r, std::string* error) {
  if (err != 0 || r == nullptr) {
    *error = ub_strerror(err);
    return LookupStatus::kServFail;
  }
  if (r->bogus) {
    *error = std::string("DNSSEC validation failed: ") + (r->why_bogus ? r->why_bogus : "bogus");
    return LookupStatus::kServFail;
  }
  if (r->nxdomain || r->rcode == kRcodeNxDomain) return LookupStatus::kNxDomain;
  if (r->rcode != 0) {
    *error = "rcode " + std::to_string(r->rcode);
    return LookupStatus::kServFail;
  }
  return r->havedata ? LookupStatus::kOk : LookupStatus::kNoData;
}

// Sets *status and *error for a lookup without usable data (timed out, shut
// down, or failed); true when `r` holds records to read.
bool Answered(const ub_result* r, int err, LookupStatus failure, LookupStatus* status,
              std::string* error) {
  if (r == nullptr && err == 0) {
    *status = failure;
    *error = failure == LookupStatus::kTimeout ? "no answer in time" : "resolver shut down";
    return false;
  }
  *status = StatusOf(err, r, error);
  return *status == LookupStatus::kOk;
}

MxAnswer ToMxAnswer(const ub_result* r, int err, LookupStatus failure) {
  MxAnswer a;
  if (!Answered(r, err, failure, &a.status, &a.error)) return a;
  for (int i = 0; r->data[i] != nullptr; ++i) {
    const auto* p = reinterpret_cast<const unsigned char*>(r->data[i]);
    size_t len = static_cast<size_t>(r->len[i]);
    MxRecord rec;
    if (len < 3 || !ParseWireName(p + 2, len - 2, &rec.exchange)) continue;
    rec.preference = static_cast<uint16_t>((p[0] << 8) | p[1]);
    a.records.push_back(std::move(rec));
  }
  if (a.records.empty()) {
    a.status = LookupStatus::kServFail;
    a.error = "malformed MX records";
  }
  return a;
}

AddressAnswer ToAddressAnswer(const ub_result* r, int err, LookupStatus failure, bool v6) {
  AddressAnswer a;
  if (!Answered(r, err, failure, &a.status, &a.error)) return a;
  const size_t want = v6 ? 16 : 4;
  char text[INET6_ADDRSTRLEN];
  for (int i = 0; r->data[i] != nullptr; ++i) {
    if (static_cast<size_t>(r->len[i]) != want) continue;
    if (inet_ntop(v6 ? AF_INET6 : AF_INET, r->data[i], text, sizeof(text))) {
      a.addresses.emplace_back(text);
    }
  }
  if (a.addresses.empty()) {
    a.status = LookupStatus::kServFail;
    a.error = "malformed address records";
  }
  return a;
}

// Applies the options to a fresh context.
Status Configure(ub_ctx* ctx, const DnsOptions& options) {
  // Threads, not libunbound's default of forking a resolver process: this
  // process has other threads (gRPC, asio) that a fork would not carry.
  if (int e = ub_ctx_async(ctx, 1); e != 0) {
    return Status::Internal(std::string("libunbound threads: ") + ub_strerror(e));
  }
  // Resolvers on loopback (a local validating resolver, the tests' server,
  // systemd-resolved's 127.0.0.53) must be reachable.
  if (int e = ub_ctx_set_option(ctx, "do-not-query-localhost:", "no"); e != 0) {
    return Status::Internal(std::string("libunbound option: ") + ub_strerror(e));
  }
  // libunbound answers RFC 6761 special-use zones itself (NXDOMAIN). Two of
  // them are for private networks whose own resolver serves them: test.
  // (RFC 6761 §6.2 asks for this option) and home.arpa. (RFC 8375). Those go
  // to the configured resolvers; localhost., invalid., onion. stay local.
  // ("nodefault" is not honoured through ub_ctx_set_option in 1.17; an empty
  // "transparent" zone resolves everything normally.)
  for (const char* zone : {"test. transparent", "home.arpa. transparent"}) {
    if (int e = ub_ctx_set_option(ctx, "local-zone:", zone); e != 0) {
      return Status::Internal(std::string("libunbound local-zone: ") + ub_strerror(e));
    }
  }
  if (options.servers.empty()) {
    if (int e = ub_ctx_resolvconf(ctx, nullptr); e != 0) {
      return Status::IoError(std::string("cannot use /etc/resolv.conf: ") + ub_strerror(e));
    }
    return Status::Ok();
  }
  for (const std::string& s : options.servers) {
    Result<DnsServer> server = ParseDnsServer(s);
    if (!server.ok()) return server.status();
    std::string fwd = server->address + "@" + std::to_string(server->port);
    if (int e = ub_ctx_set_fwd(ctx, fwd.c_str()); e != 0) {
      return Status::InvalidArgument("dns server " + s + ": " + ub_strerror(e));
    }
  }
  return Status::Ok();
}

}  // namespace

struct DnsResolver::Pending {
  DnsResolver* owner;
  int async_id = 0;
  std::function<void(const ub_result*, int, LookupStatus)> finish;
  asio::steady_timer timer;
};

Result<std::shared_ptr<DnsResolver>> DnsResolver::Create(asio::any_io_executor executor,
                                                         const DnsOptions& options) {
  ub_ctx* ctx = ub_ctx_create();
  if (ctx == nullptr) return Status::Internal("libunbound: cannot create a context");
  Status st = Configure(ctx, options);
  int fd = st.ok() ? ::dup(ub_fd(ctx)) : -1;
  if (st.ok() && fd < 0) st = Status::IoError("libunbound: no descriptor to watch");
  if (!st.ok()) {
    ub_ctx_delete(ctx);
    return st;
  }
  std::shared_ptr<DnsResolver> r(new DnsResolver(std::move(executor), ctx, fd, options.timeout));
  r->WatchFd();
  return r;
}

DnsResolver::DnsResolver(asio::any_io_executor executor, ub_ctx* ctx, int fd,
                         std::chrono::milliseconds timeout)
    : strand_(asio::make_strand(executor)), ctx_(ctx), fd_(strand_, fd), timeout_(timeout) {}

DnsResolver::~DnsResolver() {
  // No strand handler holds a reference now, so nothing else touches
  // pending_ or the context.
  asio::error_code ignored;
  fd_.close(ignored);
  ub_ctx_delete(ctx_);  // stops the resolver thread; no callback runs after this
  for (auto& [raw, p] : pending_) {
    p->timer.cancel();
    p->finish(nullptr, 0, LookupStatus::kServFail);
  }
}

void DnsResolver::WatchFd() {
  std::weak_ptr<DnsResolver> weak = weak_from_this();
  auto on_readable = [weak](const asio::error_code& ec) {
    std::shared_ptr<DnsResolver> self = weak.lock();
    if (!self || ec) return;  // closed: the resolver is going away
    ub_process(self->ctx_);   // runs OnResult for every answer in the pipe
    self->WatchFd();
  };
  // async_wait re-arms the descriptor in epoll, so an answer that arrived
  // before this call is still reported.
  fd_.async_wait(asio::posix::stream_descriptor::wait_read,
                 asio::bind_executor(strand_, std::move(on_readable)));
}

void DnsResolver::Start(std::string name, int rrtype,
                        std::function<void(const ub_result*, int, LookupStatus)> finish) {
  auto owned = std::make_unique<Pending>(
      Pending{this, 0, std::move(finish), asio::steady_timer(strand_, timeout_)});
  Pending* p = owned.get();
  // In the map before the call, in case an answer is delivered at once.
  pending_.emplace(p, std::move(owned));
  int err = ub_resolve_async(ctx_, name.c_str(), rrtype, kClassIn, p, &DnsResolver::OnResult,
                             &p->async_id);
  if (err != 0) {
    auto it = pending_.find(p);
    owned = std::move(it->second);
    pending_.erase(it);
    owned->finish(nullptr, err, LookupStatus::kServFail);
    return;
  }
  std::weak_ptr<DnsResolver> weak = weak_from_this();
  auto on_timer = [weak, p](const asio::error_code& ec) {
    std::shared_ptr<DnsResolver> self = weak.lock();
    if (!self || ec == asio::error::operation_aborted) return;
    self->OnTimeout(p);
  };
  p->timer.async_wait(asio::bind_executor(strand_, std::move(on_timer)));
}

void DnsResolver::OnTimeout(Pending* p) {
  auto it = pending_.find(p);
  if (it == pending_.end()) return;  // answered meanwhile
  std::unique_ptr<Pending> owned = std::move(it->second);
  pending_.erase(it);
  ub_cancel(ctx_, owned->async_id);  // its callback will not run
  owned->finish(nullptr, 0, LookupStatus::kTimeout);
}

void DnsResolver::OnResult(void* mydata, int err, ub_result* result) {
  auto* p = static_cast<Pending*>(mydata);
  DnsResolver* self = p->owner;
  auto it = self->pending_.find(p);
  if (it != self->pending_.end()) {
    std::unique_ptr<Pending> owned = std::move(it->second);
    self->pending_.erase(it);
    owned->timer.cancel();
    owned->finish(result, err, LookupStatus::kServFail);
  }
  if (result) ub_resolve_free(result);
}

void DnsResolver::QueryMx(std::string name, std::function<void(MxAnswer)> done) {
  std::weak_ptr<DnsResolver> weak = weak_from_this();
  auto start = [weak, name = std::move(name), done = std::move(done)]() mutable {
    auto finish = [done](const ub_result* r, int err, LookupStatus failure) {
      done(ToMxAnswer(r, err, failure));
    };
    std::shared_ptr<DnsResolver> self = weak.lock();
    if (!self) return finish(nullptr, 0, LookupStatus::kServFail);
    self->Start(std::move(name), kTypeMx, std::move(finish));
  };
  asio::post(strand_, std::move(start));
}

void DnsResolver::QueryAddresses(std::string name, bool v6,
                                 std::function<void(AddressAnswer)> done) {
  std::weak_ptr<DnsResolver> weak = weak_from_this();
  auto start = [weak, name = std::move(name), v6, done = std::move(done)]() mutable {
    auto finish = [done, v6](const ub_result* r, int err, LookupStatus failure) {
      done(ToAddressAnswer(r, err, failure, v6));
    };
    std::shared_ptr<DnsResolver> self = weak.lock();
    if (!self) return finish(nullptr, 0, LookupStatus::kServFail);
    self->Start(std::move(name), v6 ? kTypeAaaa : kTypeA, std::move(finish));
  };
  asio::post(strand_, std::move(start));
}

asio::awaitable<MxAnswer> DnsResolver::LookupMx(std::string name) {
  std::shared_ptr<DnsResolver> self = shared_from_this();
  auto start = [self, name = std::move(name)](auto done) mutable {
    self->QueryMx(std::move(name), std::move(done));
  };
  MxAnswer answer = co_await AwaitCallback<MxAnswer>(std::move(start));
  co_return answer;
}

asio::awaitable<AddressAnswer> DnsResolver::LookupAddresses(std::string name, bool v6) {
  std::shared_ptr<DnsResolver> self = shared_from_this();
  auto start = [self, name = std::move(name), v6](auto done) mutable {
    self->QueryAddresses(std::move(name), v6, std::move(done));
  };
  AddressAnswer answer = co_await AwaitCallback<AddressAnswer>(std::move(start));
  co_return answer;
}

}  // namespace porcupine::outbound
