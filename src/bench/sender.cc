#include "bench/sender.h"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "bench/smtp_client.h"

namespace porcupine::bench {
namespace {

// Closed loop: the transaction starts when MAIL is sent (after the message is
// built), not at a scheduled time.
constexpr TimePoint kNow = TimePoint::min();
// A late open-loop start: behind schedule by more than this.
constexpr auto kLate = std::chrono::seconds(1);
// Reconnect backoff after failures: doubles from the first to the last.
constexpr auto kBackoffFirst = std::chrono::milliseconds(50);
constexpr auto kBackoffMax = std::chrono::milliseconds(1000);

struct Outcome {
  bool delivered = false;
  bool usable = true;  // the connection can carry another transaction
  uint32_t accepted = 0;
};

class Sender {
 public:
  Sender(SessionEnv env, uint32_t id)
      : env_(env),
        id_(id),
        rng_(SessionSeed(env.plan().opts.seed, 1, id)),
        endpoints_(env.plan().smtp[id % env.plan().smtp.size()]) {}

  asio::awaitable<void> Run();

 private:
  asio::awaitable<bool> OneConnection(SmtpClient& smtp);
  asio::awaitable<std::optional<TimePoint>> NextStart();
  void Build();
  asio::awaitable<Outcome> Transaction(SmtpClient& smtp, TimePoint start);
  asio::awaitable<Outcome> Replies(SmtpClient& smtp, std::string_view commands, size_t count);
  asio::awaitable<void> Backoff();
  // Counts a fault that left the connection unusable.
  Outcome Broken(const Fault& f) {
    env_.Count(f);
    return Outcome{false, false, 0};
  }

  SessionEnv env_;
  uint32_t id_;
  Rng rng_;
  const std::vector<asio::ip::tcp::endpoint>& endpoints_;
  uint64_t seq_ = 0;
  int failures_ = 0;  // consecutive, for the backoff
  // The current message, reused to avoid an allocation per message.
  std::vector<uint32_t> rcpts_;
  std::string commands_;
  std::string data_;
  uint64_t size_ = 0;
};

// The next start: kNow (closed loop) or the next slot of the schedule (open
// loop), slept until. nullopt once the window has ended.
asio::awaitable<std::optional<TimePoint>> Sender::NextStart() {
  TimePoint now = SteadyClock::now();
  if (env_.clock().Ended(now)) co_return std::nullopt;
  if (!env_.schedule) co_return kNow;
  auto offset =
      std::chrono::duration_cast<Duration>(std::chrono::duration<double>(env_.schedule->Next()));
  TimePoint slot = env_.clock().start() + offset;
  if (env_.clock().Ended(slot)) co_return std::nullopt;
  if (now - slot > kLate) env_.stats->late_starts.fetch_add(1, std::memory_order_relaxed);
  if (!co_await SleepUntil(env_, slot)) co_return std::nullopt;
  co_return slot;
}

void Sender::Build() {
  const Plan& plan = env_.plan();
  const ZipfSampler& zipf = *env_.shared->zipf;
  rcpts_ = SampleDistinct(zipf, static_cast<uint32_t>(plan.opts.recipients), rng_);
  MessageSpec spec;
  spec.from = plan.UserAddress(std::uniform_int_distribution<uint32_t>(0, zipf.size() - 1)(rng_));
  for (uint32_t r : rcpts_) spec.to.push_back(plan.UserAddress(r));
  spec.message_id = MakeMessageId(plan.nonce, env_.worker, id_, seq_++, plan.opts.domain);
  spec.date = std::time(nullptr);
  spec.size = env_.shared->sizes->Sample(rng_);
  data_.clear();
  size_ = env_.shared->factory->AppendData(spec, rng_, &data_);
  commands_.clear();
  commands_.append("MAIL FROM:<").append(spec.from).append(">\r\n");
  for (const std::string& to : spec.to) commands_.append("RCPT TO:<").append(to).append(">\r\n");
  commands_.append("DATA\r\n");
}

// Reads the replies to MAIL, the RCPTs and DATA. With pipelining all
// `count` commands are already sent; without, each is sent here in turn and
// the dialogue stops early once MAIL failed or no RCPT was accepted.
asio::awaitable<Outcome> Sender::Replies(SmtpClient& smtp, std::string_view commands,
                                         size_t count) {
  Outcome out;
  bool mail_ok = false;
  bool pipelined = smtp.pipelining() && env_.plan().opts.pipelining;
  for (size_t i = 0; i < count; ++i) {
    size_t eol = commands.find('\n') + 1;
    std::string_view cmd = commands.substr(0, eol);
    commands.remove_prefix(eol);
    bool is_data = i + 1 == count;
    if (!pipelined) {
      if ((is_data && out.accepted == 0) || (i > 0 && !mail_ok)) break;
      if (MaybeFault f = co_await smtp.Send(cmd)) co_return Broken(*f);
    }
    SmtpReply reply;
    if (MaybeFault f = co_await smtp.Read(&reply)) co_return Broken(*f);
    std::string_view name = cmd.substr(0, 4);
    if (reply.code == 421) co_return Broken(ReplyFault(reply, name));  // the server is closing
    if (i == 0) {
      mail_ok = reply.code / 100 == 2;
      if (!mail_ok) env_.Count(ReplyFault(reply, name));
    } else if (!is_data) {
      if (reply.code / 100 == 2) {
        ++out.accepted;
      } else if (mail_ok) {  // after a failed MAIL the 503s say nothing new
        env_.Count(ReplyFault(reply, "RCPT"));
      }
    } else if (reply.code == 354) {
      out.delivered = true;  // provisionally: the body goes next
    } else if (mail_ok && out.accepted > 0) {
      env_.Count(ReplyFault(reply, name));
    }
  }
  co_return out;
}

asio::awaitable<Outcome> Sender::Transaction(SmtpClient& smtp, TimePoint start) {
  Build();
  if (start == kNow) start = SteadyClock::now();
  bool pipelined = smtp.pipelining() && env_.plan().opts.pipelining;
  if (pipelined) {
    if (MaybeFault f = co_await smtp.Send(commands_)) co_return Broken(*f);
  }
  size_t count = 2 + rcpts_.size();
  Outcome out = co_await Replies(smtp, commands_, count);
  if (!out.delivered) co_return out;  // no 354: the transaction is over
  out.delivered = false;
  if (MaybeFault f = co_await smtp.Send(data_)) co_return Broken(*f);
  SmtpReply reply;
  if (MaybeFault f = co_await smtp.Read(&reply)) co_return Broken(*f);
  TimePoint done = SteadyClock::now();
  if (reply.code != 250) {
    env_.Count(ReplyFault(reply, "end of DATA"));
    out.usable = out.usable && reply.code != 421;
    co_return out;
  }
  out.delivered = true;
  WorkerStats& s = *env_.stats;
  s.delivered_total.fetch_add(1, std::memory_order_relaxed);
  if (env_.clock().InWindow(done)) {
    s.delivered.fetch_add(1, std::memory_order_relaxed);
    s.recipients.fetch_add(out.accepted, std::memory_order_relaxed);
    s.bytes_sent.fetch_add(size_, std::memory_order_relaxed);
    env_.Record(Op::kSmtpDeliver, start, done);
  }
  co_return out;
}

asio::awaitable<void> Sender::Backoff() {
  auto delay = std::min<Duration>(kBackoffFirst * (1 << std::min(failures_, 10)), kBackoffMax);
  ++failures_;
  co_await SleepUntil(env_, SteadyClock::now() + delay);
}

// One connection: open, send up to --messages-per-connection messages, QUIT.
// Returns whether the session should go on.
asio::awaitable<bool> Sender::OneConnection(SmtpClient& smtp) {
  TimePoint t0 = SteadyClock::now();
  if (MaybeFault f = co_await smtp.Open(endpoints_, "bench.porcupine.invalid")) {
    env_.Count(*f);
    co_await Backoff();
    co_return true;
  }
  if (const Plan& plan = env_.plan(); plan.tls) {
    MaybeFault f = co_await smtp.StartTls(*plan.tls, plan.opts.tls_name, "bench.porcupine.invalid");
    if (f) {
      env_.Count(*f);
      co_await Backoff();
      co_return true;
    }
  }
  env_.Record(Op::kSmtpConnect, t0, SteadyClock::now());
  for (int n = 0; n < env_.plan().opts.messages_per_connection; ++n) {
    std::optional<TimePoint> start = co_await NextStart();
    if (!start) break;
    Outcome out = co_await Transaction(smtp, *start);
    if (out.delivered) {
      failures_ = 0;
      continue;
    }
    if (!out.usable) {
      co_await Backoff();
      co_return true;
    }
    // A refused transaction: reset it, and slow down so a refusing server
    // is not hammered.
    SmtpReply reply;
    if (co_await smtp.Send("RSET\r\n") || co_await smtp.Read(&reply) || reply.code != 250) {
      co_await Backoff();
      co_return true;
    }
    co_await Backoff();
  }
  co_await smtp.Quit();
  co_return !env_.clock().Ended(SteadyClock::now());
}

asio::awaitable<void> Sender::Run() {
  while (!env_.clock().Ended(SteadyClock::now())) {
    Connection conn(env_.ex, env_.registry, env_.timeout());
    SmtpClient smtp(&conn, ReplyLimits{});
    if (!co_await OneConnection(smtp)) break;
  }
}

}  // namespace

asio::awaitable<void> RunSender(SessionEnv env, uint32_t id) {
  Sender sender(env, id);
  co_await sender.Run();
}

}  // namespace porcupine::bench
