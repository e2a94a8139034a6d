#include "mail/postmaster.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace porcupine::mail {

PostmasterStep AfterPostmasterLookup(Code lookup, bool create) {
  switch (lookup) {
    case Code::kOk:
      return PostmasterStep::kDone;
    case Code::kNotFound:
      return create ? PostmasterStep::kCreate : PostmasterStep::kMissing;
    case Code::kInvalidArgument:
      return PostmasterStep::kFailed;
    default:
      return PostmasterStep::kRetry;
  }
}

PostmasterStep AfterPostmasterCreate(Code create) {
  switch (create) {
    case Code::kOk:
    case Code::kAlreadyExists:
      return PostmasterStep::kDone;
    case Code::kInvalidArgument:
      return PostmasterStep::kFailed;
    default:
      // Includes "another change of the user is in progress": the next
      // lookup finds what the other node created.
      return PostmasterStep::kRetry;
  }
}

namespace {

// One lookup, and a creation when it says so.
asio::awaitable<PostmasterStep> TryOnce(const PostmasterOptions& o,
                                        manager::ManagerRouter& managers) {
  Result<manager::UserInfo> found = co_await managers.LookupUser(o.mailbox);
  PostmasterStep step = AfterPostmasterLookup(found.status().code(), o.create);
  if (step == PostmasterStep::kDone) spdlog::info("the postmaster mailbox {} exists", o.mailbox);
  if (step == PostmasterStep::kFailed) {
    spdlog::error("postmaster mailbox {}: {}", o.mailbox, found.status().ToString());
  }
  if (step != PostmasterStep::kCreate) co_return step;
  std::string no_password;  // an empty hash: every login is refused (manager::Credentials)
  Status created =
      co_await managers.ManageUser(manager::UserOpKind::kCreate, o.mailbox, std::move(no_password));
  step = AfterPostmasterCreate(created.code());
  if (created.ok()) {
    spdlog::info(
        "created the postmaster mailbox {} without a password (set one with `porcupine user "
        "passwd`)",
        o.mailbox);
  } else if (step == PostmasterStep::kDone) {
    spdlog::info("the postmaster mailbox {} exists (another node created it)", o.mailbox);
  } else if (step == PostmasterStep::kFailed) {
    spdlog::error("cannot create the postmaster mailbox {}: {}", o.mailbox, created.ToString());
  }
  co_return step;
}

}  // namespace

asio::awaitable<PostmasterStep> EnsurePostmaster(PostmasterOptions options,
                                                 manager::ManagerRouter& managers,
                                                 std::function<bool()> stopping) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::chrono::milliseconds pause = options.first_retry;
  while (!stopping()) {
    const PostmasterStep step = co_await TryOnce(options, managers);
    if (step == PostmasterStep::kMissing) {
      spdlog::warn(
          "the postmaster mailbox {} (mail.postmaster) does not exist: mail to "
          "postmaster is refused until it is created",
          options.mailbox);
    }
    if (step != PostmasterStep::kRetry) co_return step;
    timer.expires_after(pause);
    co_await timer.async_wait(asio::use_awaitable);
    pause = std::min(pause * 2, options.max_retry);
  }
  co_return PostmasterStep::kRetry;
}

}  // namespace porcupine::mail
