// The mail service (DESIGN.md §3, §6): delivery and retrieval flows over the
// user map, the managers, the balancer and the fragment stores. Protocol
// sessions reach it through the node glue; it knows no protocol.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <asio.hpp>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "cluster/user_map.h"
#include "core/hlc.h"
#include "core/status.h"
#include "mail/fragments.h"
#include "manager/user_manager.h"

namespace porcupine::mail {

struct MailServiceOptions {
  std::vector<std::string> domains;  // local domains, lower case
  int spread = 2;
  int replication = 1;  // copies stored per message (one node: 1)
};

enum class RecipientCheck {
  kLocalUser,       // deliverable
  kUnknownUser,     // local domain, no such user
  kNotLocalDomain,  // we are not a relay
  kTempFail,        // the user's manager is unreachable
  kBadAddress,      // not a mailbox
};

struct MailboxEntry {
  store::MessageId id;
  uint64_t size = 0;
};

class MailService {
 public:
  // Every reference must outlive the service; the user map is read on each call.
  MailService(const MailServiceOptions& options, const cluster::UserMap& user_map,
              manager::ManagerDirectory& managers, NodeDirectory& nodes, Hlc& hlc);

  // Classifies an RCPT address.
  asio::awaitable<RecipientCheck> CheckRecipient(std::string address);

  // Stores `message` for every recipient (canonical or raw addresses already
  // accepted by CheckRecipient). OK only when every copy is durable; on any
  // error nothing is acknowledged and the client must retry (duplicates are
  // possible then, loss is not).
  asio::awaitable<Status> Deliver(std::vector<std::string> recipients, std::string message);

  // Authenticates `login` (an address, or a local part of the first domain)
  // and lists the user's mailbox, merged over every fragment node,
  // de-duplicated by message id, oldest first. Nodes that fail are skipped.
  // PermissionDenied on bad credentials; *user_out gets the canonical address.
  asio::awaitable<Result<std::vector<MailboxEntry>>> OpenMailbox(std::string login,
                                                                 std::string password,
                                                                 std::string* user_out);
  asio::awaitable<Result<std::string>> ReadMessage(std::string user, store::MessageId id);
  // Durably deletes the messages wherever they are held.
  asio::awaitable<Status> DeleteMessages(std::string user, std::vector<store::MessageId> ids);
  // Deletes every message of the user (admin "user del").
  asio::awaitable<Status> DeleteAllMail(std::string user);

  // Counters for metrics.
  struct Stats {
    uint64_t messages_stored = 0;  // message copies stored (one per recipient)
    uint64_t bytes_stored = 0;
  };
  Stats stats() const;

 private:
  manager::UserManager* ManagerOf(const std::string& user);
  bool IsLocalDomain(std::string_view domain) const;
  std::optional<std::string> RecipientAddress(std::string_view address) const;
  std::vector<NodeId> ChooseNodes(const std::vector<NodeId>& mail_map);
  asio::awaitable<Result<std::vector<store::MessageMeta>>> ListEverywhere(
      const std::string& user, const std::vector<NodeId>& nodes);
  store::MessageId NewMessageId();

  const MailServiceOptions options_;
  const cluster::UserMap& user_map_;
  manager::ManagerDirectory& managers_;
  NodeDirectory& nodes_;
  Hlc& hlc_;

  mutable std::mutex mu_;
  std::mt19937_64 rng_;      // guarded by mu_
  uint32_t id_counter_ = 0;  // guarded by mu_
  Stats stats_;              // guarded by mu_
};

}  // namespace porcupine::mail
