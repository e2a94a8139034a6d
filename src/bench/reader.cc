#include "bench/reader.h"

#include <chrono>
#include <string>

#include "bench/pop3_client.h"

namespace porcupine::bench {
namespace {

// Users tried for a free lease before pausing.
constexpr int kLeaseTries = 8;

// Releases a login lease however the session ends.
struct LeaseGuard {
  LoginLeases* leases;
  uint32_t user;
  ~LeaseGuard() { leases->Release(user); }
};

struct Outcome {
  bool found_mail = false;  // the session completed with at least one message
};

class Reader {
 public:
  Reader(SessionEnv env, uint32_t id)
      : env_(env),
        rng_(SessionSeed(env.plan().opts.seed, 2, id)),
        endpoints_(env.plan().pop3[id % env.plan().pop3.size()]) {}

  asio::awaitable<void> Run();

 private:
  std::optional<uint32_t> PickUser();
  asio::awaitable<Outcome> Session(uint32_t user);
  asio::awaitable<bool> Login(Pop3Client& pop, uint32_t user);
  // Retrieves and deletes up to --retr-max messages; returns how many both
  // succeeded and their bytes, or nullopt when the connection broke.
  asio::awaitable<std::optional<std::pair<uint64_t, uint64_t>>> Drain(Pop3Client& pop);
  // Sends a command expecting +OK; counts -ERR and faults. False on either.
  asio::awaitable<bool> Expect(Pop3Client& pop, std::string_view cmd, bool multiline,
                               Pop3Reply* reply);

  SessionEnv env_;
  Rng rng_;
  const std::vector<asio::ip::tcp::endpoint>& endpoints_;
  bool broken_ = false;  // the last Expect failed on the connection, not with -ERR
};

std::optional<uint32_t> Reader::PickUser() {
  for (int i = 0; i < kLeaseTries; ++i) {
    uint32_t user = env_.shared->zipf->Sample(rng_);
    if (env_.shared->leases->TryAcquire(user)) return user;
  }
  return std::nullopt;
}

asio::awaitable<bool> Reader::Expect(Pop3Client& pop, std::string_view cmd, bool multiline,
                                     Pop3Reply* reply) {
  broken_ = false;
  if (MaybeFault f = co_await pop.Command(cmd, multiline, reply)) {
    env_.Count(*f);
    broken_ = true;
    co_return false;
  }
  if (!reply->ok) {
    env_.Count(ErrFault(*reply, cmd.substr(0, cmd.find(' '))));
    co_return false;
  }
  co_return true;
}

asio::awaitable<bool> Reader::Login(Pop3Client& pop, uint32_t user) {
  Pop3Reply reply;
  co_return co_await Expect(pop, "USER " + env_.plan().UserAddress(user), false, &reply) &&
      co_await Expect(pop, "PASS " + env_.plan().opts.password, false, &reply);
}

asio::awaitable<std::optional<std::pair<uint64_t, uint64_t>>> Reader::Drain(Pop3Client& pop) {
  Pop3Reply reply;
  if (!co_await Expect(pop, "LIST", true, &reply)) co_return std::nullopt;
  std::optional<std::vector<MaildropEntry>> list = ParseList(reply.body);
  if (!list) {
    env_.Count(Fault{ErrorKind::kProtocol, "malformed LIST reply"});
    co_return std::nullopt;
  }
  uint64_t done = 0;
  uint64_t bytes = 0;
  size_t limit = std::min<size_t>(list->size(), env_.plan().opts.retr_max);
  for (size_t i = 0; i < limit && !env_.clock().Ended(SteadyClock::now()); ++i) {
    std::string n = std::to_string((*list)[i].number);
    TimePoint t0 = SteadyClock::now();
    if (!co_await Expect(pop, "RETR " + n, true, &reply)) {
      if (broken_) co_return std::nullopt;
      continue;  // vanished (another client deleted it): go on
    }
    env_.Record(Op::kPop3Retr, t0, SteadyClock::now());
    uint64_t size = reply.body.size();
    if (!co_await Expect(pop, "DELE " + n, false, &reply)) {
      if (broken_) co_return std::nullopt;
      continue;
    }
    ++done;
    bytes += size;
  }
  co_return std::make_pair(done, bytes);
}

asio::awaitable<Outcome> Reader::Session(uint32_t user) {
  TimePoint t0 = SteadyClock::now();
  Connection conn(env_.ex, env_.registry, env_.timeout());
  Pop3Client pop(&conn, ReplyLimits{});
  if (MaybeFault f = co_await pop.Open(endpoints_)) {
    env_.Count(*f);
    co_return Outcome{};
  }
  if (!co_await Login(pop, user)) co_return Outcome{};
  Pop3Reply reply;
  if (!co_await Expect(pop, "STAT", false, &reply)) co_return Outcome{};
  std::optional<uint64_t> count = ParseStat(reply.text);
  if (!count) {
    env_.Count(Fault{ErrorKind::kProtocol, "malformed STAT reply: " + reply.text});
    co_return Outcome{};
  }
  std::pair<uint64_t, uint64_t> got{0, 0};
  if (*count > 0) {
    auto drained = co_await Drain(pop);
    if (!drained) co_return Outcome{};
    got = *drained;
  }
  // The deletions take effect only with the +OK to QUIT (RFC 1939 §6).
  if (!co_await Expect(pop, "QUIT", false, &reply)) co_return Outcome{};
  TimePoint done = SteadyClock::now();
  WorkerStats& s = *env_.stats;
  s.retrieved_total.fetch_add(got.first, std::memory_order_relaxed);
  if (env_.clock().InWindow(done)) {
    s.retrieved.fetch_add(got.first, std::memory_order_relaxed);
    s.bytes_retrieved.fetch_add(got.second, std::memory_order_relaxed);
  }
  env_.Record(Op::kPop3Session, t0, done);
  co_return Outcome{got.first > 0};
}

asio::awaitable<void> Reader::Run() {
  auto poll = std::chrono::milliseconds(env_.plan().opts.poll_ms);
  while (!env_.clock().Ended(SteadyClock::now())) {
    std::optional<uint32_t> user = PickUser();
    Outcome out;
    if (user) {
      LeaseGuard guard{env_.shared->leases, *user};
      out = co_await Session(*user);
    }
    if (!out.found_mail) co_await SleepUntil(env_, SteadyClock::now() + poll);
  }
}

}  // namespace

asio::awaitable<void> RunReader(SessionEnv env, uint32_t id) {
  Reader reader(env, id);
  co_await reader.Run();
}

}  // namespace porcupine::bench
