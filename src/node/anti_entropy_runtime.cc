#include "node/anti_entropy_runtime.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <map>

#include "core/async.h"
#include "core/hash.h"
#include "replication/log_record.h"
#include "replication/rereplication.h"

namespace porcupine::node {

using replication::Item;
using replication::ObjectRef;

AntiEntropyRuntime::AntiEntropyRuntime(const AntiEntropyOptions& options, asio::io_context& io,
                                       store::Store& store, ClusterRuntime& cluster,
                                       ClusterDirectory& directory, ReplicationRuntime& replication,
                                       Hlc& hlc)
    : options_(options),
      io_(io),
      store_(store),
      cluster_(cluster),
      directory_(directory),
      replication_(replication),
      hlc_(hlc),
      buckets_(store.node_meta().buckets()),
      schedule_(options.upkeep, SystemNowMs()) {}

AntiEntropyRuntime::~AntiEntropyRuntime() {
  Stop();
  scan_pool_.join();
}

void AntiEntropyRuntime::Start() { asio::co_spawn(io_, Loop(), asio::detached); }

void AntiEntropyRuntime::Stop() {
  stopped_ = true;
  schedule_changed_.Notify();
  scan_pool_.stop();
}

void AntiEntropyRuntime::OnView(const cluster::View& view) {
  {
    std::lock_guard lock(schedule_mu_);
    schedule_.OnView(view, SystemNowMs());
  }
  schedule_changed_.Notify();
}

template <typename Fn>
auto AntiEntropyRuntime::OnScanThread(Fn fn) -> asio::awaitable<decltype(fn())> {
  co_return co_await RunOn(scan_pool_.get_executor(), std::move(fn));
}

asio::awaitable<void> AntiEntropyRuntime::Loop() {
  while (!stopped_) {
    // Read the generation with the schedule: a view after this wakes the wait.
    const uint64_t seen = schedule_changed_.generation();
    int64_t wait_ms = 0;
    {
      std::lock_guard lock(schedule_mu_);
      const int64_t now = SystemNowMs();
      if (!schedule_.TakeRound(now)) wait_ms = schedule_.NextMs() - now;
    }
    if (wait_ms > 0) {
      co_await schedule_changed_.WaitChange(seen, std::chrono::milliseconds(wait_ms));
      continue;
    }
    co_await Round();
  }
}

asio::awaitable<void> AntiEntropyRuntime::Round() {
  std::shared_ptr<const cluster::View> view = cluster_.Current();
  if (view->epoch == 0) co_return;
  rounds_.fetch_add(1);
  auto rereplicate = [this, view] {
    Rereplicate(*view);
    CollectTombstones();
    return true;
  };
  (void)co_await OnScanThread(std::move(rereplicate));
  // One side of each pair starts the exchange; both sides repair.
  for (const cluster::Member& m : view->members) {
    if (m.id > cluster_.self().id && !stopped_) co_await Exchange(m);
  }
}

asio::awaitable<void> AntiEntropyRuntime::Exchange(cluster::Member peer) {
  RemotePeer* remote = directory_.Peer(peer.id);
  if (!remote) co_return;
  auto digests = [this, id = peer.id] { return Digests(id); };
  Result<std::vector<uint64_t>> mine = co_await OnScanThread(std::move(digests));
  if (!mine.ok()) co_return;
  Result<std::vector<uint32_t>> differing = co_await remote->AntiEntropy(std::move(*mine));
  if (!differing.ok()) co_return;
  for (uint32_t slot : *differing) {
    if (stopped_ || slot >= 2 * buckets_) break;
    slots_.fetch_add(1);
    auto items = [this, id = peer.id, slot] { return Items(id, slot); };
    Result<std::vector<Item>> list = co_await OnScanThread(std::move(items));
    if (!list.ok()) co_return;
    Result<std::vector<Item>> want = co_await remote->AntiEntropyCompare(slot, std::move(*list));
    if (!want.ok()) co_return;
    PushTo(peer.id, *want);
  }
}

asio::awaitable<Result<std::vector<uint32_t>>> AntiEntropyRuntime::Differing(
    NodeId peer, std::vector<uint64_t> digests) {
  if (digests.size() != 2 * buckets_) co_return Status::InvalidArgument("digest count");
  auto scan = [this, peer] { return Digests(peer); };
  Result<std::vector<uint64_t>> mine = co_await OnScanThread(std::move(scan));
  if (!mine.ok()) co_return mine.status();
  co_return replication::Differing(*mine, digests);
}

asio::awaitable<Result<std::vector<Item>>> AntiEntropyRuntime::Compare(NodeId peer, uint32_t slot,
                                                                       std::vector<Item> theirs) {
  if (slot >= 2 * buckets_) co_return Status::InvalidArgument("slot out of range");
  auto scan = [this, peer, slot] { return Items(peer, slot); };
  Result<std::vector<Item>> mine = co_await OnScanThread(std::move(scan));
  if (!mine.ok()) co_return mine.status();
  replication::Comparison c = replication::Compare(std::move(*mine), std::move(theirs));
  slots_.fetch_add(1);
  PushTo(peer, c.push);
  co_return std::move(c.pull);
}

namespace {

bool Lists(const store::MessageMeta& m, NodeId node) {
  return std::find(m.replicas().begin(), m.replicas().end(), node) != m.replicas().end();
}

// A tombstone's version is later than every live one (store::VersionOf), so
// the comparison pushes deletions over live copies, never the reverse.
Item MessageItem(const std::string& user, const store::MessageMeta& m) {
  return {{ObjectRef::Kind::kMessage, user, m.folder(), m.id()}, store::VersionOf(m)};
}

Item ProfileItem(const store::Profile& p) {
  return {{ObjectRef::Kind::kProfile, p.user(), 0, ""}, p.hlc()};
}

}  // namespace

Result<std::vector<uint64_t>> AntiEntropyRuntime::Digests(NodeId peer) {
  std::vector<uint64_t> d(2 * buckets_, 0);
  const int64_t now = SystemNowMs();
  Status st = store_.ScanMessages(
      0, static_cast<store::Bucket>(buckets_ - 1),
      [&](store::Bucket b, const std::string& user, const store::MessageMeta& m) {
        if (!Lists(m, peer)) return;
        if (!replication::InDigest({m.hlc(), m.tombstone()}, now, options_.upkeep)) return;
        d[replication::MessageSlot(b)] ^= replication::ItemHash(MessageItem(user, m));
      });
  if (st.ok()) {
    st = store_.ScanBucketProfiles(
        0, static_cast<store::Bucket>(buckets_ - 1), [&](store::Bucket b, const store::Profile& p) {
          d[replication::ProfileSlot(buckets_, b)] ^= replication::ItemHash(ProfileItem(p));
        });
  }
  if (!st.ok()) {
    // A partial digest would start repairs for slots that do not differ.
    spdlog::warn("anti-entropy scan failed: {}", st.ToString());
    return st;
  }
  return d;
}

Result<std::vector<Item>> AntiEntropyRuntime::Items(NodeId peer, uint32_t slot) {
  std::vector<Item> out;
  Status st;
  if (slot < buckets_) {
    const auto b = static_cast<store::Bucket>(slot);
    st = store_.ScanMessages(
        b, b, [&](store::Bucket, const std::string& user, const store::MessageMeta& m) {
          if (Lists(m, peer)) out.push_back(MessageItem(user, m));
        });
  } else {
    const auto b = static_cast<store::Bucket>(slot - buckets_);
    st = store_.ScanBucketProfiles(
        b, b, [&](store::Bucket, const store::Profile& p) { out.push_back(ProfileItem(p)); });
  }
  // A partial list would have the peer push what this node holds already,
  // or hear that it lacks what it holds.
  if (!st.ok()) return st;
  return out;
}

void AntiEntropyRuntime::PushTo(NodeId peer, const std::vector<Item>& items) {
  const int64_t now = SystemNowMs();
  for (const Item& item : items) {
    // A transient entry: the replication manager pushes the current version.
    replication::Entry e;
    e.object = item.object;
    e.hlc = item.hlc;
    e.remaining = {peer};
    e.created_ms = now;
    replication_.Track(std::move(e));
  }
  pushed_.fetch_add(items.size());
}

namespace {

// The update of `meta` this node must push: to every replica but itself.
replication::Entry EntryOf(const std::string& user, const store::MessageMeta& meta, NodeId self) {
  replication::Entry e;
  e.object = {ObjectRef::Kind::kMessage, user, meta.folder(), meta.id()};
  e.hlc = meta.hlc();
  for (uint32_t r : meta.replicas()) {
    if (r != self) e.remaining.insert(r);
  }
  e.created_ms = SystemNowMs();
  e.bytes = meta.tombstone() ? 0 : meta.size();
  return e;
}

}  // namespace

void AntiEntropyRuntime::Rereplicate(const cluster::View& view) {
  // One snapshot of the loads for the whole round (shared by every decision).
  auto loads = std::make_shared<std::map<NodeId, uint64_t>>();
  for (const cluster::Member& m : view.members) (*loads)[m.id] = cluster_.LoadOf(m.id);
  replication::ReplicaPlanInput in;
  in.view = &view;
  in.self = cluster_.self().id;
  in.want = static_cast<size_t>(std::max(options_.replication, 1));
  in.load = [loads](NodeId n) {
    auto it = loads->find(n);
    return it == loads->end() ? UINT64_MAX : it->second;
  };
  struct Candidate {
    std::string user;
    store::MessageOutcome outcome;
  };
  std::deque<Candidate> candidates;  // stable addresses for the outcomes
  store::Batch batch;
  // The scan only finds candidates; each write decides again against the
  // record as it is then: a delete or an update that lands in between is
  // never overwritten by the scanned version re-stamped.
  Status st = store_.ScanMessages(
      0, static_cast<store::Bucket>(buckets_ - 1),
      [&](store::Bucket b, const std::string& user, const store::MessageMeta& m) {
        if (m.tombstone() ||
            !replication::PlanReplicas({m.replicas().begin(), m.replicas().end()}, m.id(), in)) {
          return;
        }
        auto decide = [this, in, user](const store::MessageMeta* held) {
          store::MessageChange c;
          if (!held) return c;
          std::optional<replication::Replan> plan = replication::PlanRereplication(
              {held->replicas().begin(), held->replicas().end()}, held->id(),
              {held->hlc(), held->tombstone()}, hlc_.Now(), in);
          if (!plan) return c;
          c.action = store::MessageChange::Action::kPut;
          c.meta = *held;
          c.meta.clear_replicas();
          for (NodeId r : plan->replicas) c.meta.add_replicas(r);
          c.meta.set_hlc(plan->hlc);
          replication::Entry e = EntryOf(user, c.meta, in.self);
          if (!e.remaining.empty()) c.log = replication::ToRecord(e);
          return c;
        };
        Candidate& cand = candidates.emplace_back(Candidate{user, {}});
        batch.UpdateMessage(b, user, m.folder(), *store::MessageId::FromBytes(m.id()),
                            std::move(decide), &cand.outcome);
      });
  if (!st.ok()) {
    spdlog::warn("re-replication scan failed: {}", st.ToString());
    return;
  }
  if (candidates.empty()) return;
  if (Status w = store_.Commit(std::move(batch)); !w.ok()) {
    spdlog::warn("re-replication: {}", w.ToString());
    return;
  }
  size_t n = 0;
  for (const Candidate& c : candidates) {
    if (!c.outcome.applied) continue;
    ++n;
    replication::Entry e = EntryOf(c.user, *c.outcome.after, in.self);
    if (!e.remaining.empty()) replication_.Track(std::move(e));
  }
  rereplicated_.fetch_add(n);
  if (n) spdlog::info("re-replication: {} messages got a new replica list", n);
}

void AntiEntropyRuntime::CollectTombstones() {
  const int64_t now = SystemNowMs();
  store::Batch batch;
  size_t n = 0;
  std::deque<store::MessageOutcome> outcomes;
  Status st = store_.ScanMessages(
      0, static_cast<store::Bucket>(buckets_ - 1),
      [&](store::Bucket b, const std::string& user, const store::MessageMeta& m) {
        if (!m.tombstone()) return;
        const bool pending =
            replication_.Pending({ObjectRef::Kind::kMessage, user, m.folder(), m.id()});
        if (!replication::Collectable({m.hlc(), true}, pending, now, options_.upkeep)) return;
        // Only the tombstone scanned goes: a newer version written since stays.
        auto purge = [hlc = m.hlc()](const store::MessageMeta* held) {
          store::MessageChange c;
          if (held && held->tombstone() && held->hlc() == hlc) {
            c.action = store::MessageChange::Action::kPurge;
          }
          return c;
        };
        batch.UpdateMessage(b, user, m.folder(), *store::MessageId::FromBytes(m.id()),
                            std::move(purge), &outcomes.emplace_back());
      });
  if (!st.ok()) {
    spdlog::warn("tombstone GC scan failed: {}", st.ToString());
    return;
  }
  if (outcomes.empty()) return;
  if (Status w = store_.Commit(std::move(batch)); !w.ok()) {
    spdlog::warn("tombstone GC: {}", w.ToString());
    return;
  }
  for (const store::MessageOutcome& o : outcomes) n += o.applied ? 1 : 0;
  purged_.fetch_add(n);
  if (n) {
    spdlog::info("tombstone GC: purged {} tombstones older than {} s", n,
                 options_.upkeep.grace_ms / 1000);
  }
}

AntiEntropyRuntime::Stats AntiEntropyRuntime::stats() const {
  return {rounds_.load(), slots_.load(), pushed_.load(), rereplicated_.load(), purged_.load()};
}

}  // namespace porcupine::node
