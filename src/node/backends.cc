#include "node/backends.h"

#include <spdlog/spdlog.h>

#include <ctime>

namespace porcupine::node {

std::string NowRfc5322() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

asio::awaitable<smtp::Response> SmtpBackend::Handle(smtp::Request request) {
  if (auto* check = std::get_if<smtp::CheckRecipient>(&request)) {
    switch (co_await mail_.CheckRecipient(check->address)) {
      case mail::RecipientCheck::kLocalUser:
        co_return smtp::RecipientVerdict::kAccept;
      case mail::RecipientCheck::kUnknownUser:
      case mail::RecipientCheck::kBadAddress:
        co_return smtp::RecipientVerdict::kUnknownUser;
      case mail::RecipientCheck::kNotLocalDomain:
        co_return smtp::RecipientVerdict::kRelayDenied;
      case mail::RecipientCheck::kTempFail:
        co_return smtp::RecipientVerdict::kTempFail;
    }
    co_return smtp::RecipientVerdict::kTempFail;
  }
  auto& deliver = std::get<smtp::Deliver>(request);
  const size_t copies = deliver.recipients.size();
  const size_t bytes = deliver.message.size();
  Status st = co_await mail_.Deliver(std::move(deliver.recipients), std::move(deliver.message));
  if (st.ok()) {
    metrics_.messages_stored->Increment(static_cast<double>(copies));
    metrics_.bytes_stored->Increment(static_cast<double>(copies * bytes));
  } else {
    metrics_.smtp().backend_errors->Increment();
    spdlog::warn("delivery failed: {}", st.ToString());
  }
  co_return st;
}

asio::awaitable<pop3::Response> Pop3Backend::Handle(pop3::Request request) {
  auto dispatch = [this](auto&& r) { return Do(std::move(r)); };
  co_return co_await std::visit(dispatch, std::move(request));
}

asio::awaitable<pop3::Response> Pop3Backend::Do(pop3::Login login) {
  std::string user;
  auto box = co_await mail_.OpenMailbox(login.user, login.password, &user);
  if (!box.ok()) {
    if (box.status().code() != Code::kPermissionDenied) metrics_.pop3().backend_errors->Increment();
    co_return pop3::LoginResult(box.status());
  }
  user_ = user;
  std::vector<pop3::MessageEntry> entries;
  entries.reserve(box->size());
  for (mail::MailboxEntry& e : *box) {
    std::string uid = e.id.ToHex();
    entries.push_back({uid, e.size});
    entries_[uid] = std::move(e);
  }
  co_return pop3::LoginResult(std::move(entries));
}

asio::awaitable<pop3::Response> Pop3Backend::Do(pop3::Retrieve retrieve) {
  auto it = entries_.find(retrieve.uid);
  if (it == entries_.end()) co_return pop3::RetrieveResult(Status::NotFound("no such message"));
  auto body = co_await mail_.ReadMessage(user_, it->second);
  if (!body.ok() && body.status().code() != Code::kNotFound) {
    metrics_.pop3().backend_errors->Increment();
  }
  co_return pop3::RetrieveResult(std::move(body));
}

asio::awaitable<pop3::Response> Pop3Backend::Do(pop3::Commit commit) {
  std::vector<mail::MailboxEntry> doomed;
  for (const std::string& uid : commit.uids) {
    auto it = entries_.find(uid);
    if (it != entries_.end()) doomed.push_back(it->second);
  }
  const size_t count = doomed.size();
  Status st = co_await mail_.DeleteMessages(user_, std::move(doomed));
  if (st.ok()) {
    metrics_.messages_deleted->Increment(static_cast<double>(count));
  } else {
    metrics_.pop3().backend_errors->Increment();
  }
  co_return st;
}

}  // namespace porcupine::node
