// Protocol backends: turn a session engine's requests into mail-service calls
// and the answers back into the engine's responses. One backend object per
// connection (it remembers the authenticated user).
#pragma once

#include <asio.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "admin/metrics.h"
#include "mail/mail_service.h"
#include "node/change_watch.h"
#include "node/scram.h"
#include "protocol/imap/session.h"
#include "protocol/pop3/session.h"
#include "protocol/smtp/session.h"

namespace porcupine::node {

class SmtpBackend {
 public:
  // client: the connection's net::ClientKey (the login throttle counts it).
  SmtpBackend(mail::MailService& mail, admin::Metrics& metrics, std::string client = "")
      : mail_(mail), metrics_(metrics), client_(client), scram_(mail, std::move(client)) {}
  asio::awaitable<smtp::Response> Handle(smtp::Request request);
  ScramServer& scram() { return scram_; }

 private:
  asio::awaitable<smtp::Response> Do(smtp::CheckRecipient check);
  asio::awaitable<smtp::Response> Do(protocol::SaslStep step);
  asio::awaitable<smtp::Response> Do(smtp::Login login);
  asio::awaitable<smtp::Response> Do(smtp::Deliver deliver);

  mail::MailService& mail_;
  admin::Metrics& metrics_;
  const std::string client_;
  ScramServer scram_;
};

class Pop3Backend {
 public:
  // client: the connection's net::ClientKey (the login throttle counts it).
  Pop3Backend(mail::MailService& mail, admin::Metrics& metrics, std::string client = "")
      : mail_(mail), metrics_(metrics), client_(client), scram_(mail, std::move(client)) {}
  asio::awaitable<pop3::Response> Handle(pop3::Request request);
  ScramServer& scram() { return scram_; }

 private:
  asio::awaitable<pop3::Response> Do(pop3::Login login);
  asio::awaitable<pop3::Response> Do(protocol::SaslStep step);
  asio::awaitable<pop3::Response> Do(pop3::OpenMaildrop open);
  pop3::LoginResult Listed(std::string user, std::vector<mail::MailboxEntry> box);
  asio::awaitable<pop3::Response> Do(pop3::Retrieve retrieve);
  asio::awaitable<pop3::Response> Do(pop3::Commit commit);

  mail::MailService& mail_;
  admin::Metrics& metrics_;
  const std::string client_;
  ScramServer scram_;
  std::string scram_user_;  // a SCRAM exchange authenticated this user
  std::string user_;        // canonical address after a successful Login
  std::unordered_map<std::string, mail::MailboxEntry> entries_;  // by UIDL, from Login
};

class ImapBackend {
 public:
  // `watch` (optional) lets IDLE polls skip re-reads when no node reported a
  // change of the user's messages; a full re-read still comes every `recheck`
  // (folder changes and UIDs in flight are not in the stores' versions).
  // client: the connection's net::ClientKey (the login throttle counts it).
  ImapBackend(mail::MailService& mail, admin::Metrics& metrics, std::string client = "",
              ChangeWatch* watch = nullptr,
              std::chrono::milliseconds recheck = std::chrono::milliseconds(10000))
      : mail_(mail),
        metrics_(metrics),
        client_(client),
        scram_(mail, std::move(client)),
        watch_(watch),
        recheck_(recheck) {}
  asio::awaitable<imap::Response> Handle(imap::Request request);
  ScramServer& scram() { return scram_; }

 private:
  asio::awaitable<imap::Response> Do(imap::Login r);
  asio::awaitable<imap::Response> Do(protocol::SaslStep r);
  void LoggedIn(std::string user);
  asio::awaitable<imap::Response> Do(imap::ListFolders r);
  asio::awaitable<imap::Response> Do(imap::CreateFolder r);
  asio::awaitable<imap::Response> Do(imap::DeleteFolder r);
  asio::awaitable<imap::Response> Do(imap::RenameFolder r);
  asio::awaitable<imap::Response> Do(imap::Subscribe r);
  asio::awaitable<imap::Response> Do(imap::OpenFolder r);
  asio::awaitable<imap::Response> Do(imap::FetchBody r);
  asio::awaitable<imap::Response> Do(imap::StoreFlags r);
  asio::awaitable<imap::Response> Do(imap::CopyMessages r);
  asio::awaitable<imap::Response> Do(imap::AppendMessage r);
  asio::awaitable<imap::Response> Do(imap::ExpungeMessages r);
  // The entries of the session's messages, as last listed (with holders).
  std::vector<mail::MailboxEntry> EntriesOf(const std::vector<imap::MessageInfo>& messages);
  asio::awaitable<Status> FolderChange(manager::FolderOp op);
  // The selection's last snapshot, "unchanged", with `uidnext`.
  imap::Snapshot Unchanged(uint32_t uidnext) const;
  Status Counted(Status st);

  mail::MailService& mail_;
  admin::Metrics& metrics_;
  const std::string client_;
  ScramServer scram_;
  std::string user_;  // canonical address after a successful Login
  std::unordered_map<std::string, mail::MailboxEntry> entries_;  // by MessageInfo::id
  // The ids of the selected folder's messages the session shows.
  std::unordered_set<std::string> shown_;
  mail::ListingCache listing_;  // of the selected folder
  imap::Snapshot last_;         // the last one given for it, without messages
  // IDLE polls without a re-read (ChangeWatch).
  ChangeWatch* const watch_;
  const std::chrono::milliseconds recheck_;
  std::unique_ptr<ChangeWatch::Interest> interest_;  // in user_, after Login
  bool last_valid_ = false;  // last_ is of the current selection, named last_name_
  std::string last_name_;
  uint64_t mark_ = 0;  // watch_->Changes(user_) before the last full read
  std::chrono::steady_clock::time_point full_at_;
  bool held_ = false;  // the last full read held messages back (FolderView::hold_from)
};

// "Tue, 24 Nov 2026 10:11:12 +0000" for Received: headers.
std::string NowRfc5322();

}  // namespace porcupine::node
