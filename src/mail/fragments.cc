#include "mail/fragments.h"

#include <algorithm>

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

}  // namespace

asio::awaitable<Status> LocalFragments::Store(std::vector<NewMessage> messages,
                                              std::shared_ptr<const std::string> body) {
  store::Batch batch;
  for (const NewMessage& m : messages) {
    batch.PutMessage(BucketOf(m.user, buckets_), m.user, m.meta, body.get());
  }
  co_return co_await Commit(store_, std::move(batch));
}

asio::awaitable<Result<std::vector<store::MessageMeta>>> LocalFragments::List(std::string user) {
  co_return store_.ListMessages(BucketOf(user, buckets_), user, store::kInboxFolder);
}

asio::awaitable<Result<std::string>> LocalFragments::Fetch(std::string user, store::MessageId id) {
  Result<std::optional<store::MessageMeta>> meta =
      store_.GetMessage(BucketOf(user, buckets_), user, store::kInboxFolder, id);
  if (!meta.ok()) co_return meta.status();
  if (!meta->has_value() || (*meta)->tombstone()) co_return Status::NotFound("no such message");
  co_return store_.ReadBody(id);
}

asio::awaitable<Status> LocalFragments::Delete(std::string user,
                                               std::vector<store::MessageId> ids) {
  const store::Bucket bucket = BucketOf(user, buckets_);
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
  co_return co_await Commit(store_, std::move(batch));
}

}  // namespace porcupine::mail
