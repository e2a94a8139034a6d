#include "mail/fragments.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <set>

#include "core/async.h"
#include "core/change_signal.h"
#include "core/hash.h"
#include "replication/log_record.h"
#include "replication/maintenance.h"

namespace porcupine::mail {
namespace {

asio::awaitable<Status> Commit(store::Store& store, store::Batch batch) {
  auto submit = [&store, b = std::move(batch)](auto done) mutable {
    store.Submit(std::move(b), done);
  };
  co_return co_await AwaitCallback<Status>(std::move(submit));
}

// Counts one disk-bound request for the load while it runs.
class InFlight {
 public:
  explicit InFlight(std::atomic<uint64_t>& n) : n_(n) { n_.fetch_add(1); }
  ~InFlight() { n_.fetch_sub(1); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  std::atomic<uint64_t>& n_;
};

}  // namespace

LocalFragments::LocalFragments(const FragmentOptions& options, store::Store& store, Hlc& hlc,
                               NodeId self, manager::ManagerRouter& managers,
                               manager::ViewSource& views)
    : options_(options),
      store_(store),
      hlc_(hlc),
      self_(self),
      buckets_(store.node_meta().buckets()),
      managers_(managers),
      views_(views) {}

asio::awaitable<void> LocalFragments::DebugDelay() {
  if (debug_delay_.count() == 0) co_return;
  asio::steady_timer t(co_await asio::this_coro::executor, debug_delay_);
  co_await t.async_wait(asio::use_awaitable);
}

store::Bucket LocalFragments::BucketOfUser(const std::string& user) const {
  return BucketOf(user, buckets_);
}

namespace {

// The flags of `m` after the flag change `c` (kReplace, kAdd or kRemove).
std::vector<std::string> ChangedFlags(const store::MessageMeta& m, const FlagChange& c) {
  std::vector<std::string> flags(m.flags().begin(), m.flags().end());
  auto has = [&](const std::string& f) {
    return std::find(flags.begin(), flags.end(), f) != flags.end();
  };
  if (c.mode == FlagChange::Mode::kReplace) flags.clear();
  if (c.mode == FlagChange::Mode::kRemove) {
    std::erase_if(flags, [&](const std::string& f) {
      return std::find(c.flags.begin(), c.flags.end(), f) != c.flags.end();
    });
    return flags;
  }
  for (const std::string& f : c.flags) {
    if (!has(f)) flags.push_back(f);
  }
  return flags;
}

// The log entry of an update of `meta` made here: every other replica.
replication::Update UpdateOf(const std::string& user, const store::MessageMeta& meta, NodeId self,
                             uint64_t bytes, std::vector<NodeId> mail_map) {
  replication::Update u;
  u.entry.object = {replication::ObjectRef::Kind::kMessage, user, meta.folder(), meta.id()};
  u.entry.hlc = meta.hlc();
  for (uint32_t r : meta.replicas()) {
    if (r != self) u.entry.remaining.insert(r);
  }
  u.entry.created_ms = Hlc::PhysicalMs(meta.hlc());
  u.entry.bytes = bytes;
  u.mail_map = std::move(mail_map);
  return u;
}

}  // namespace

asio::awaitable<Status> LocalFragments::Announce(const std::string& user) {
  co_return co_await managers_.UpdateMailMap(user, self_, true, hlc_.Now());
}

asio::awaitable<void> LocalFragments::Replicate(std::vector<replication::Update> updates,
                                                const std::vector<size_t>& copies_wanted) {
  if (updates.empty() || !replication_) co_return;
  std::vector<size_t> acked = co_await replication_->Replicate(std::move(updates));
  for (size_t i = 0; i < acked.size(); ++i) {
    // Availability first: accepted anyway; the backlog brings the missing
    // copies later (docs/replication.md).
    if (1 + acked[i] < copies_wanted[i]) below_ack_copies_.fetch_add(1);
  }
}

asio::awaitable<Status> LocalFragments::Store(std::vector<NewMessage> messages,
                                              std::shared_ptr<const std::string> body,
                                              cluster::Epoch proxy_epoch) {
  InFlight counted(inflight_);
  co_await DebugDelay();
  const cluster::Epoch before = views_.Current()->epoch;
  store::Batch batch;
  std::vector<replication::Update> updates;
  std::vector<size_t> wanted;
  for (const NewMessage& m : messages) {
    const store::Bucket bucket = BucketOfUser(m.user);
    batch.PutMessage(bucket, m.user, m.meta, body);
    replication::Update u = UpdateOf(m.user, m.meta, self_, body->size(), m.mail_map);
    if (u.entry.remaining.empty()) continue;
    // The object and its log entry in one synced batch (DESIGN.md §6).
    batch.PutLog(bucket, replication::ToRecord(u.entry));
    wanted.push_back(std::min<size_t>(static_cast<size_t>(std::max(options_.ack_copies, 1)),
                                      u.entry.remaining.size() + 1));
    updates.push_back(std::move(u));
  }
  PORCUPINE_CO_RETURN_IF_ERROR(co_await Commit(store_, std::move(batch)));
  // The mail is durable. The manager must list this node before the proxy
  // acknowledges: when the proxy's map did not, when a view change raced the
  // write (the reconstruction scan may have run before it), or when this
  // fragment emptied since.
  const bool raced = proxy_epoch != before || views_.Current()->epoch != before;
  std::set<std::string> announce;
  {
    std::lock_guard lock(mu_);
    for (const NewMessage& m : messages) {
      if (presence_.LiveWritten(m.user, m.in_map, raced)) announce.insert(m.user);
    }
  }
  for (const std::string& user : announce) {
    Status st = co_await Announce(user);
    if (!st.ok()) {
      // Stored but not yet findable: the client retries (a duplicate at
      // worst); the next store for the user or the next reconstruction
      // announces this copy. Not "unavailable": the proxy must not store
      // the same message id elsewhere, under a second replica set that a
      // later delete of the first would miss.
      {
        std::lock_guard lock(mu_);
        presence_.Emptied(user);
      }
      // The copies are durable with their log entries: the other replicas
      // still get them, in the background, not at the next restart.
      if (replication_) {
        for (replication::Update& u : updates) replication_->Track(std::move(u.entry));
      }
      co_return Status::UnknownOutcome("stored, but the user's manager was not told: " +
                                       st.message());
    }
  }
  co_await Replicate(std::move(updates), wanted);
  co_return Status::Ok();
}

asio::awaitable<Result<uint64_t>> LocalFragments::ApplyReplica(
    std::string user, store::MessageMeta meta, std::shared_ptr<const std::string> body, bool in_map,
    std::vector<NodeId> takeover) {
  InFlight counted(inflight_);
  co_await DebugDelay();
  const store::Bucket bucket = BucketOfUser(user);
  std::optional<store::MessageId> id = store::MessageId::FromBytes(meta.id());
  if (!id) co_return Status::InvalidArgument("bad message id");
  hlc_.Observe(meta.hlc());
  const cluster::Epoch before = views_.Current()->epoch;
  std::optional<store::LogRecord> takeover_log;
  if (!takeover.empty()) {
    replication::Update u = UpdateOf(user, meta, self_, body ? body->size() : 0, {});
    u.entry.remaining = {takeover.begin(), takeover.end()};
    u.entry.remaining.erase(self_);
    u.entry.takeover = true;
    if (!u.entry.remaining.empty()) takeover_log = replication::ToRecord(u.entry);
  }
  // Last writer wins (store::VersionOf: a tombstone after every live
  // version), decided against what is stored when the write happens. A
  // winner that does not name every node the held version named is written
  // again as a later version with both lists, coordinated from here
  // (replication/maintenance.h, WidenedReplicas).
  const uint64_t reissue_hlc = hlc_.Now();
  std::set<NodeId> removed = views_.Current()->removed;
  std::optional<store::LogRecord> reissue_log;
  auto newer = [&, meta, body, takeover_log](const store::MessageMeta* held) {
    store::MessageChange c;
    if (held && store::VersionOf(*held) >= store::VersionOf(meta)) return c;
    c.action = store::MessageChange::Action::kPut;
    c.meta = meta;
    c.body = body;
    c.log = takeover_log;
    reissue_log.reset();
    std::optional<std::vector<NodeId>> wider =
        held ? replication::WidenedReplicas({held->replicas().begin(), held->replicas().end()},
                                            {meta.replicas().begin(), meta.replicas().end()},
                                            removed)
             : std::nullopt;
    if (wider) {
      c.meta.clear_replicas();
      for (NodeId r : *wider) c.meta.add_replicas(r);
      c.meta.set_hlc(std::max(meta.hlc() + 1, reissue_hlc));
      replication::Update u = UpdateOf(user, c.meta, self_, body ? body->size() : 0, {});
      reissue_log = replication::ToRecord(u.entry);
      c.log = reissue_log;
    }
    return c;
  };
  store::MessageOutcome outcome;
  store::Batch batch;
  batch.UpdateMessage(bucket, user, meta.folder(), *id, std::move(newer), &outcome);
  const uint64_t stamp = hlc_.Now();
  PORCUPINE_CO_RETURN_IF_ERROR(co_await Commit(store_, std::move(batch)));
  if (!outcome.after) co_return Status::InvalidArgument("a live message without its body");
  const uint64_t held = store::VersionOf(*outcome.after);
  if (!outcome.applied) co_return held;
  if (reissue_log) {
    widened_.fetch_add(1);
    if (replication_) replication_->Track(replication::FromRecord(*reissue_log));
  } else if (takeover_log && replication_) {
    replication_->Track(replication::FromRecord(*takeover_log));
  }
  if (meta.tombstone()) {
    co_await MaybeEmptied(user, stamp);
    co_return held;
  }
  bool announce = false;
  {
    std::lock_guard lock(mu_);
    announce = presence_.LiveWritten(user, in_map, views_.Current()->epoch != before);
  }
  if (announce) {
    Status st = co_await Announce(user);
    if (!st.ok()) {
      std::lock_guard lock(mu_);
      presence_.Emptied(user);
      co_return st;  // the coordinator retries, and this node announces then
    }
  }
  co_return held;
}

asio::awaitable<void> LocalFragments::MaybeEmptied(const std::string& user, uint64_t stamp) {
  Result<bool> live = store_.HasLiveMessages(BucketOfUser(user), user);
  if (live.ok() && *live) co_return;
  {
    // Unsure counts as emptied: the next live write tells the manager again.
    std::lock_guard lock(mu_);
    presence_.Emptied(user);
  }
  if (!live.ok()) {
    spdlog::warn("fragments: cannot tell whether {} still has mail here: {}", user,
                 live.status().ToString());
    co_return;
  }
  // Best effort: a stale entry only costs the readers an empty listing, and
  // the next reconstruction corrects it.
  (void)co_await managers_.UpdateMailMap(user, self_, false, stamp);
}

asio::awaitable<Result<Listing>> LocalFragments::List(std::string user, uint32_t folder,
                                                      uint64_t if_changed) {
  // Read before the scan: a change that lands during it gives a newer
  // version, so the caller lists again next time.
  Listing out;
  out.version = store_.MessagesVersion(user);
  if (if_changed != 0 && if_changed == out.version) {
    out.unchanged = true;  // no disk touched
    co_return out;
  }
  InFlight counted(inflight_);
  co_await DebugDelay();
  Result<std::vector<store::MessageMeta>> list =
      store_.ListMessages(BucketOfUser(user), user, folder);
  if (!list.ok()) co_return list.status();
  out.messages = std::move(*list);
  co_return out;
}

asio::awaitable<Result<std::string>> LocalFragments::Fetch(std::string user, uint32_t folder,
                                                           store::MessageId id) {
  InFlight counted(inflight_);
  co_await DebugDelay();
  Result<std::optional<store::MessageMeta>> meta =
      store_.GetMessage(BucketOfUser(user), user, folder, id);
  if (!meta.ok()) co_return meta.status();
  if (!meta->has_value() || (*meta)->tombstone()) co_return Status::NotFound("no such message");
  Result<std::string> body = store_.ReadBody(id);
  if (body.status().code() == Code::kNotFound) {
    // A live record without its body breaks a rule of the store (written
    // before the store enforced it, or damage): reported, and the reader
    // tries the message's other holders.
    bodyless_.fetch_add(1);
    spdlog::error("store: message {} of {} is listed but has no body here (replicas {})",
                  id.ToHex(), user, fmt::join((*meta)->replicas(), ","));
    co_return Status::Corruption("the message's body is missing on this node");
  }
  co_return body;
}

asio::awaitable<Status> LocalFragments::Delete(std::string user, uint32_t folder,
                                               std::vector<store::MessageId> ids) {
  std::vector<FlagChange> changes;
  for (const store::MessageId& id : ids) {
    changes.push_back({id, FlagChange::Mode::kTombstone, {}, 0, 0});
  }
  co_return (co_await SetFlags(std::move(user), folder, std::move(changes))).status();
}

namespace {

// The next version of `m` after the change `c`, or nullopt when `c` changes
// nothing (a deleted message, a renumbering done already, flags as they are).
std::optional<store::MessageMeta> Changed(const store::MessageMeta& m, const FlagChange& c) {
  if (m.tombstone()) return std::nullopt;
  store::MessageMeta next = m;
  if (c.mode == FlagChange::Mode::kTombstone) {
    // A replicated tombstone ("death certificate"): the newer version of
    // the object, pushed like any update; the body goes.
    next.set_tombstone(true);
  } else if (c.mode == FlagChange::Mode::kRenumber) {
    if (m.uid() != c.from_uid || c.to_uid == 0) return std::nullopt;  // moved already
    next.set_uid(c.to_uid);
  } else {
    std::vector<std::string> flags = ChangedFlags(m, c);
    if (std::equal(flags.begin(), flags.end(), m.flags().begin(), m.flags().end())) {
      return std::nullopt;  // nothing changes: no new version
    }
    next.clear_flags();
    for (std::string& f : flags) next.add_flags(std::move(f));
  }
  return next;
}

}  // namespace

asio::awaitable<Result<std::vector<store::MessageId>>> LocalFragments::SetFlags(
    std::string user, uint32_t folder, std::vector<FlagChange> changes) {
  InFlight counted(inflight_);
  co_await DebugDelay();
  const store::Bucket bucket = BucketOfUser(user);
  store::Batch batch;
  // Each change is decided against the message as stored when the batch is
  // written, so concurrent changes (a delete, another session's flags, a
  // replica's update) all take effect and none revives a deleted message.
  std::vector<store::MessageOutcome> outcomes(changes.size());
  for (size_t i = 0; i < changes.size(); ++i) {
    auto decide = [this, user, c = changes[i]](const store::MessageMeta* held) {
      store::MessageChange out;
      std::optional<store::MessageMeta> next = held ? Changed(*held, c) : std::nullopt;
      if (!next) return out;
      next->set_hlc(std::max(held->hlc() + 1, hlc_.Now()));
      replication::Update u =
          UpdateOf(user, *next, self_, next->tombstone() ? 0 : next->size(), {});
      if (!u.entry.remaining.empty()) out.log = replication::ToRecord(u.entry);
      out.action = store::MessageChange::Action::kPut;
      out.meta = std::move(*next);
      return out;
    };
    batch.UpdateMessage(bucket, user, folder, changes[i].id, std::move(decide), &outcomes[i]);
  }
  if (batch.empty()) co_return std::vector<store::MessageId>{};
  PORCUPINE_CO_RETURN_IF_ERROR(co_await Commit(store_, std::move(batch)));
  std::vector<replication::Update> updates;
  std::vector<size_t> wanted;
  std::vector<store::MessageId> changed;
  bool tombstoned = false;
  for (size_t i = 0; i < changes.size(); ++i) {
    if (!outcomes[i].applied) continue;
    const store::MessageMeta& next = *outcomes[i].after;
    changed.push_back(changes[i].id);
    tombstoned = tombstoned || next.tombstone();
    replication::Update u = UpdateOf(user, next, self_, next.tombstone() ? 0 : next.size(), {});
    if (u.entry.remaining.empty()) continue;
    wanted.push_back(std::min<size_t>(static_cast<size_t>(std::max(options_.ack_copies, 1)),
                                      u.entry.remaining.size() + 1));
    updates.push_back(std::move(u));
  }
  // The stamp comes before the emptiness check, so a store that lands after
  // the check announces itself with a larger stamp (manager/soft_state.h).
  if (tombstoned) co_await MaybeEmptied(user, hlc_.Now());
  co_await Replicate(std::move(updates), wanted);
  co_return changed;
}

asio::awaitable<Result<std::vector<SlotVersion>>> LocalFragments::WatchVersions(
    std::vector<SlotVersion> slots, std::chrono::milliseconds wait) {
  for (const SlotVersion& s : slots) {
    if (s.slot >= store::Store::kVersionSlots) co_return Status::InvalidArgument("bad slot");
  }
  const auto deadline = std::chrono::steady_clock::now() + wait;
  uint64_t seen = ~uint64_t{0};
  for (;;) {
    // Versions move only with the generation: most wake-ups are one load.
    const uint64_t generation = store_.VersionsGeneration();
    if (generation != seen) {
      seen = generation;
      std::vector<SlotVersion> out;
      for (const SlotVersion& s : slots) {
        const uint64_t now = store_.SlotVersion(s.slot);
        if (now != s.version) out.push_back({s.slot, now});
      }
      if (!out.empty()) co_return out;
    }
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= std::chrono::milliseconds::zero()) co_return std::vector<SlotVersion>{};
    co_await store_.VersionsChanged().WaitChange(seen, left);
  }
}

}  // namespace porcupine::mail
