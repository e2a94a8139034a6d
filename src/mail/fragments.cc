#include "mail/fragments.h"

#include <algorithm>
#include <set>

#include "core/async.h"
#include "core/hash.h"

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

LocalFragments::LocalFragments(store::Store& store, Hlc& hlc, NodeId self,
                               manager::ManagerRouter& managers, manager::ViewSource& views)
    : store_(store),
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

asio::awaitable<Status> LocalFragments::Store(std::vector<NewMessage> messages,
                                              std::shared_ptr<const std::string> body,
                                              cluster::Epoch proxy_epoch) {
  InFlight counted(inflight_);
  co_await DebugDelay();
  const cluster::Epoch before = views_.Current()->epoch;
  store::Batch batch;
  for (const NewMessage& m : messages) {
    batch.PutMessage(BucketOfUser(m.user), m.user, m.meta, body.get());
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
      if (emptied_.erase(m.user) || !m.in_map || raced) announce.insert(m.user);
    }
  }
  for (const std::string& user : announce) {
    Status st = co_await managers_.UpdateMailMap(user, self_, true, hlc_.Now());
    if (!st.ok()) {
      // Stored but not yet findable: the client retries (a duplicate at
      // worst); the next reconstruction finds this copy too.
      std::lock_guard lock(mu_);
      emptied_.insert(user);
      co_return st;
    }
  }
  co_return Status::Ok();
}

asio::awaitable<Result<std::vector<store::MessageMeta>>> LocalFragments::List(std::string user) {
  InFlight counted(inflight_);
  co_await DebugDelay();
  co_return store_.ListMessages(BucketOfUser(user), user, store::kInboxFolder);
}

asio::awaitable<Result<std::string>> LocalFragments::Fetch(std::string user, store::MessageId id) {
  InFlight counted(inflight_);
  co_await DebugDelay();
  Result<std::optional<store::MessageMeta>> meta =
      store_.GetMessage(BucketOfUser(user), user, store::kInboxFolder, id);
  if (!meta.ok()) co_return meta.status();
  if (!meta->has_value() || (*meta)->tombstone()) co_return Status::NotFound("no such message");
  co_return store_.ReadBody(id);
}

asio::awaitable<Status> LocalFragments::Delete(std::string user,
                                               std::vector<store::MessageId> ids) {
  InFlight counted(inflight_);
  co_await DebugDelay();
  const store::Bucket bucket = BucketOfUser(user);
  store::Batch batch;
  for (const store::MessageId& id : ids) {
    Result<std::optional<store::MessageMeta>> meta =
        store_.GetMessage(bucket, user, store::kInboxFolder, id);
    if (!meta.ok()) co_return meta.status();
    if (!meta->has_value() || (*meta)->tombstone()) continue;
    store::MessageMeta tomb = **meta;
    tomb.set_tombstone(true);
    tomb.set_hlc(std::max(tomb.hlc() + 1, hlc_.Now()));
    batch.DeleteMessage(bucket, user, tomb);
  }
  if (batch.empty()) co_return Status::Ok();
  PORCUPINE_CO_RETURN_IF_ERROR(co_await Commit(store_, std::move(batch)));
  // The stamp comes before the emptiness check, so a store that lands after
  // the check announces itself with a larger stamp (manager/soft_state.h).
  const uint64_t stamp = hlc_.Now();
  Result<std::vector<store::MessageMeta>> left =
      store_.ListMessages(bucket, user, store::kInboxFolder);
  if (left.ok() && left->empty()) {
    {
      std::lock_guard lock(mu_);
      emptied_.insert(user);
    }
    // Best effort: a stale entry only costs the readers an empty listing,
    // and the next reconstruction corrects it.
    (void)co_await managers_.UpdateMailMap(user, self_, false, stamp);
  }
  co_return Status::Ok();
}

}  // namespace porcupine::mail
