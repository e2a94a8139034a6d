#include "node/anti_entropy_runtime.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/async.h"
#include "core/hash.h"
#include "replication/log_record.h"

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
      buckets_(store.node_meta().buckets()) {}

AntiEntropyRuntime::~AntiEntropyRuntime() {
  Stop();
  scan_pool_.join();
}

void AntiEntropyRuntime::Start() { asio::co_spawn(io_, Loop(), asio::detached); }

void AntiEntropyRuntime::Stop() {
  stopped_ = true;
  scan_pool_.stop();
}

void AntiEntropyRuntime::OnView(const cluster::View& view) {
  const size_t removed = view.removed.size();
  if (!view.joined.empty() || removed > removed_seen_.exchange(removed)) {
    soon_ms_ = SystemNowMs() + options_.after_join.count();
  }
}

template <typename Fn>
auto AntiEntropyRuntime::OnScanThread(Fn fn) -> asio::awaitable<decltype(fn())> {
  co_return co_await RunOn(scan_pool_.get_executor(), std::move(fn));
}

asio::awaitable<void> AntiEntropyRuntime::Loop() {
  asio::steady_timer timer(io_);
  int64_t next_round = SystemNowMs() + options_.interval.count();
  while (!stopped_) {
    timer.expires_after(std::chrono::milliseconds(200));
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopped_) break;
    const int64_t now = SystemNowMs();
    const int64_t soon = soon_ms_.load();
    if (now < next_round && (soon == 0 || now < soon)) continue;
    soon_ms_ = 0;
    next_round = now + options_.interval.count();
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
  std::vector<uint64_t> mine = co_await OnScanThread(std::move(digests));
  Result<std::vector<uint32_t>> differing = co_await remote->AntiEntropy(std::move(mine));
  if (!differing.ok()) co_return;
  for (uint32_t slot : *differing) {
    if (stopped_ || slot >= 2 * buckets_) break;
    slots_.fetch_add(1);
    auto items = [this, id = peer.id, slot] { return Items(id, slot); };
    std::vector<Item> list = co_await OnScanThread(std::move(items));
    Result<std::vector<Item>> want = co_await remote->AntiEntropyCompare(slot, std::move(list));
    if (!want.ok()) co_return;
    PushTo(peer.id, *want);
  }
}

asio::awaitable<Result<std::vector<uint32_t>>> AntiEntropyRuntime::Differing(
    NodeId peer, std::vector<uint64_t> digests) {
  if (digests.size() != 2 * buckets_) co_return Status::InvalidArgument("digest count");
  auto scan = [this, peer] { return Digests(peer); };
  std::vector<uint64_t> mine = co_await OnScanThread(std::move(scan));
  co_return replication::Differing(mine, digests);
}

asio::awaitable<Result<std::vector<Item>>> AntiEntropyRuntime::Compare(NodeId peer, uint32_t slot,
                                                                       std::vector<Item> theirs) {
  if (slot >= 2 * buckets_) co_return Status::InvalidArgument("slot out of range");
  auto scan = [this, peer, slot] { return Items(peer, slot); };
  std::vector<Item> mine = co_await OnScanThread(std::move(scan));
  replication::Comparison c = replication::Compare(std::move(mine), std::move(theirs));
  slots_.fetch_add(1);
  PushTo(peer, c.push);
  co_return std::move(c.pull);
}

namespace {

bool Lists(const store::MessageMeta& m, NodeId node) {
  return std::find(m.replicas().begin(), m.replicas().end(), node) != m.replicas().end();
}

Item MessageItem(const std::string& user, const store::MessageMeta& m) {
  return {{ObjectRef::Kind::kMessage, user, m.folder(), m.id()}, m.hlc()};
}

Item ProfileItem(const store::Profile& p) {
  return {{ObjectRef::Kind::kProfile, p.user(), 0, ""}, p.hlc()};
}

}  // namespace

std::vector<uint64_t> AntiEntropyRuntime::Digests(NodeId peer) {
  std::vector<uint64_t> d(2 * buckets_, 0);
  // Tombstones past half the grace are left out of the digests (both sides
  // purge them eventually); the item lists still carry them.
  const int64_t old = SystemNowMs() - options_.tombstone_grace.count() / 2;
  Status st = store_.ScanMessages(
      0, static_cast<store::Bucket>(buckets_ - 1),
      [&](store::Bucket b, const std::string& user, const store::MessageMeta& m) {
        if (!Lists(m, peer)) return;
        if (m.tombstone() && Hlc::PhysicalMs(m.hlc()) < old) return;
        d[replication::MessageSlot(b)] ^= replication::ItemHash(MessageItem(user, m));
      });
  if (st.ok()) {
    st = store_.ScanBucketProfiles(
        0, static_cast<store::Bucket>(buckets_ - 1), [&](store::Bucket b, const store::Profile& p) {
          d[replication::ProfileSlot(buckets_, b)] ^= replication::ItemHash(ProfileItem(p));
        });
  }
  if (!st.ok()) spdlog::warn("anti-entropy scan failed: {}", st.ToString());
  return d;
}

std::vector<Item> AntiEntropyRuntime::Items(NodeId peer, uint32_t slot) {
  std::vector<Item> out;
  if (slot < buckets_) {
    const auto b = static_cast<store::Bucket>(slot);
    (void)store_.ScanMessages(
        b, b, [&](store::Bucket, const std::string& user, const store::MessageMeta& m) {
          if (Lists(m, peer)) out.push_back(MessageItem(user, m));
        });
  } else {
    const auto b = static_cast<store::Bucket>(slot - buckets_);
    (void)store_.ScanBucketProfiles(
        b, b, [&](store::Bucket, const store::Profile& p) { out.push_back(ProfileItem(p)); });
  }
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

void AntiEntropyRuntime::Rereplicate(const cluster::View& view) {
  const NodeId self = cluster_.self().id;
  const size_t want = static_cast<size_t>(std::max(options_.replication, 1));
  struct Change {
    store::Bucket bucket;
    std::string user;
    store::MessageMeta meta;
  };
  std::vector<Change> changes;
  Status st = store_.ScanMessages(
      0, static_cast<store::Bucket>(buckets_ - 1),
      [&](store::Bucket b, const std::string& user, const store::MessageMeta& m) {
        std::vector<NodeId> live;
        bool lost_one = false;
        for (uint32_t r : m.replicas()) {
          if (view.removed.count(r)) {
            lost_one = true;
          } else {
            live.push_back(r);
          }
        }
        // Fewer copies than R: a node removed for good, or the message was
        // accepted where fewer nodes were reachable (a partition, a node
        // alone for a moment): topped up once more members are there.
        const bool short_of_copies = live.size() < want && view.members.size() > live.size();
        if (!lost_one && !short_of_copies) return;
        // The lowest-id replica still in the view repairs; the others wait
        // for its new version.
        NodeId lead = 0;
        for (NodeId r : live) {
          if (view.Contains(r) && (lead == 0 || r < lead)) lead = r;
        }
        if (lead != self) return;
        changes.push_back({b, user, m});
      });
  if (!st.ok()) {
    spdlog::warn("re-replication scan failed: {}", st.ToString());
    return;
  }
  for (Change& c : changes) {
    std::vector<NodeId> replicas;
    for (uint32_t r : c.meta.replicas()) {
      if (!view.removed.count(r)) replicas.push_back(r);
    }
    // New replicas: the least loaded members without a copy, ties by a
    // per-message hash (so one removal spreads its load).
    std::vector<NodeId> candidates;
    for (const cluster::Member& m : view.members) {
      if (std::find(replicas.begin(), replicas.end(), m.id) == replicas.end()) {
        candidates.push_back(m.id);
      }
    }
    const uint64_t h = Hash64(c.meta.id());
    std::sort(candidates.begin(), candidates.end(), [&](NodeId a, NodeId b) {
      uint64_t la = cluster_.LoadOf(a), lb = cluster_.LoadOf(b);
      if (la != lb) return la < lb;
      return (a ^ h) < (b ^ h);
    });
    for (NodeId n : candidates) {
      if (replicas.size() >= want) break;
      replicas.push_back(n);
    }
    if (replicas.size() == static_cast<size_t>(c.meta.replicas_size()) &&
        std::equal(replicas.begin(), replicas.end(), c.meta.replicas().begin())) {
      continue;  // nobody to add
    }
    store::MessageMeta next = c.meta;
    next.clear_replicas();
    for (NodeId r : replicas) next.add_replicas(r);
    next.set_hlc(std::max(c.meta.hlc() + 1, hlc_.Now()));
    replication::Entry e;
    e.object = {ObjectRef::Kind::kMessage, c.user, next.folder(), next.id()};
    e.hlc = next.hlc();
    for (NodeId r : replicas) {
      if (r != self) e.remaining.insert(r);
    }
    e.created_ms = SystemNowMs();
    e.bytes = next.size();
    store::Batch batch;
    if (next.tombstone()) {
      batch.DeleteMessage(c.bucket, c.user, next);
    } else {
      batch.PutMessage(c.bucket, c.user, next, nullptr);  // the body stays as it is
    }
    if (!e.remaining.empty()) batch.PutLog(c.bucket, replication::ToRecord(e));
    Status w = store_.Commit(std::move(batch));
    if (!w.ok()) {
      spdlog::warn("re-replication of {}: {}", c.user, w.ToString());
      continue;
    }
    rereplicated_.fetch_add(1);
    if (!e.remaining.empty()) replication_.Track(std::move(e));
  }
  if (!changes.empty()) {
    spdlog::info("re-replication: {} messages got a new replica after a removal", changes.size());
  }
}

void AntiEntropyRuntime::CollectTombstones() {
  const int64_t cutoff = SystemNowMs() - options_.tombstone_grace.count();
  store::Batch batch;
  size_t n = 0;
  Status st = store_.ScanMessages(
      0, static_cast<store::Bucket>(buckets_ - 1),
      [&](store::Bucket b, const std::string& user, const store::MessageMeta& m) {
        if (!m.tombstone() || Hlc::PhysicalMs(m.hlc()) >= cutoff) return;
        if (replication_.Pending({ObjectRef::Kind::kMessage, user, m.folder(), m.id()})) return;
        batch.PurgeMessage(b, user, m.folder(), *store::MessageId::FromBytes(m.id()));
        ++n;
      });
  if (!st.ok() || n == 0) return;
  Status w = store_.Commit(std::move(batch));
  if (w.ok()) {
    purged_.fetch_add(n);
    spdlog::info("tombstone GC: purged {} tombstones older than {} s", n,
                 options_.tombstone_grace.count() / 1000);
  }
}

AntiEntropyRuntime::Stats AntiEntropyRuntime::stats() const {
  return {rounds_.load(), slots_.load(), pushed_.load(), rereplicated_.load(), purged_.load()};
}

}  // namespace porcupine::node
