// IMAP4rev1 server session (RFC 3501) with IDLE, UIDPLUS, MOVE, NAMESPACE,
// SPECIAL-USE, LITERAL+, ENABLE, ID, UNSELECT, CHILDREN, SASL-IR and
// STARTTLS: a pure state machine, see protocol/common/session.h.
//
// STARTTLS (RFC 3501 §6.2.1) is offered in CAPABILITY (and the greeting's
// capability code) while not authenticated, the transport has TLS available
// and is not secure. It ends the pipeline: nothing after it is parsed;
// "tag OK Begin TLS negotiation now", every buffered byte is dropped and
// Next() returns kStartTls. After OnTlsStarted() the session is still not
// authenticated and CAPABILITY no longer lists STARTTLS (the client asks
// again). BAD "TLS already active" when secure, "Unknown command" when TLS is
// not available, and "Command not valid in this state" after login.
//
// States: not authenticated → authenticated → selected → logout. The session
// keeps the selected folder's view (the message list the client knows, by
// sequence number) and learns about changes made elsewhere by asking the
// backend for a fresh Snapshot of the folder (OpenFolder) at NOOP, CHECK,
// IDLE polls and after its own changes, then diffs: untagged EXPUNGE (only
// where RFC 3501 §7.4.1 allows it), EXISTS, RECENT and FETCH (FLAGS).
//
// The backend owns all mailbox state; every request names the user (the
// canonical address returned by Login) and the folder by name. Message
// bodies are fetched one at a time and parsed by mime::ParsedMessage.
//
// Memory: every literal's octets are reserved against SessionInfo::
// message_budget when the literal is announced (before "+", before a LITERAL+
// literal is read) and held until the command's tagged response, so an
// APPEND's message stays reserved until the backend has stored it. A literal
// that does not fit gets "tag NO [LIMIT] ..." (RFC 5530) instead of a
// continuation; a LITERAL+ one is read and discarded, not buffered. It is a
// temporary condition (the client may retry), not a counted error.
//
// Thread-safety: none; one session per connection, used by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/memory_budget.h"
#include "core/status.h"
#include "protocol/common/sasl.h"
#include "protocol/common/session.h"
#include "protocol/imap/parser.h"

namespace porcupine::imap {

// Every session limit, named and defaulted (docs/config.md lists them).
struct Limits {
  ParserLimits parser;
  // Counted errors (BAD commands, failed logins) before each further command
  // waits tarpit_delay, and the count that ends the session with BYE.
  int soft_error_limit = 10;
  std::chrono::milliseconds tarpit_delay{1000};
  int hard_error_limit = 50;
  uint64_t max_commands = 1000000;           // per session
  size_t max_pipelined = 64;                 // commands parsed ahead of execution
  std::chrono::milliseconds idle_poll{500};  // IDLE: how often the folder is re-read
  uint64_t max_message_size = 50ull << 20;   // APPEND (the node sets it to parser.max_literal)
};

struct SessionInfo {
  std::string server_hostname = "localhost";
  std::string implementation = "porcupine";  // ID response "name"
  std::string version = "0.1";
  protocol::Transport transport;  // secure / TLS available / loopback peer
  // The node's budget of message bytes held in flight by client sessions
  // (limits.message_memory_bytes), shared with SMTP DATA; must outlive the
  // session. nullptr: literals are limited by Limits::parser alone.
  MemoryBudget* message_budget = nullptr;
};

// ---- the backend's data -------------------------------------------------

struct FolderInfo {
  std::string name;         // full name, '/' separates levels; "INBOX" for the inbox
  std::string special_use;  // "\\Sent", "\\Drafts", "\\Trash", "\\Junk" or empty
  bool subscribed = false;
};

struct MessageInfo {
  uint32_t uid = 0;
  std::string id;                  // backend's stable id of the message (opaque)
  std::vector<std::string> flags;  // "\\Seen", "\\Answered", ..., keywords; no "\\Recent"
  int64_t internal_date_ms = 0;
  uint64_t size = 0;               // RFC822.SIZE
  int32_t internal_date_zone = 0;  // INTERNALDATE's zone, minutes east of UTC
};

struct Snapshot {
  uint32_t uidvalidity = 0;
  uint32_t uidnext = 0;
  std::vector<MessageInfo> messages;  // ascending uid
  // \Recent (RFC 3501 §2.3.2): the messages with uid >= recent_from were
  // not yet claimed by any session before this request. With
  // OpenFolder::claim_recent those in `messages` are now this session's
  // recent messages (no other session gets them; one not in `messages` yet
  // is claimed by the snapshot that first has it); without, they are only
  // counted (EXAMINE, STATUS RECENT).
  uint32_t recent_from = 0;
  // Only for a re-read of the selection (OpenFolder::shown_through > 0):
  // nothing changed since the snapshot before, and `messages` is empty.
  bool unchanged = false;
};

// ---- requests (the session's Step::request) ------------------------------

// Credentials; OK → Result value is the canonical user name.
struct Login {
  std::string user;
  std::string password;
};
struct ListFolders {  // → Result<std::vector<FolderInfo>>
  std::string user;
};
struct CreateFolder {  // → Status; AlreadyExists, InvalidArgument (bad name)
  std::string user;
  std::string name;
};
struct DeleteFolder {  // → Status; NotFound; FailedPrecondition for INBOX
  std::string user;
  std::string name;
};
struct RenameFolder {  // → Status; NotFound, AlreadyExists; INBOX moves its mail (RFC 3501)
  std::string user;
  std::string from;
  std::string to;
};
struct Subscribe {  // → Status (subscribing a non-existent folder is allowed)
  std::string user;
  std::string name;
  bool subscribe = true;
};
struct OpenFolder {  // → Result<Snapshot>; NotFound when the folder does not exist
  std::string user;
  std::string name;
  bool claim_recent = false;  // SELECT and the polls of a read-write selection
  // For the selected folder (SELECT, EXAMINE and their re-reads; not
  // STATUS). The backend renumbers a message the session could not show
  // (its UID is not above shown_through, the highest shown; 0 at SELECT)
  // and keeps a shown message whose nodes do not answer.
  bool selected = false;
  uint32_t shown_through = 0;
  // A poll during IDLE: the backend may answer "unchanged" from what it knows
  // of the cluster's changes, without asking (never for a command's re-read).
  bool idle_poll = false;
};
struct FetchBody {  // → Result<std::string> (raw message, CRLF line ends)
  std::string user;
  std::string folder;
  MessageInfo message;
};
struct StoreFlags {  // → Status
  std::string user;
  std::string folder;
  std::vector<MessageInfo>
      messages;  // the messages to change (their flags: as the session knew them)
  // The change itself, applied by the backend to each message's current
  // flags, so that concurrent sessions adding and removing different flags
  // do not undo each other (STORE FLAGS / +FLAGS / -FLAGS).
  enum class Mode { kReplace, kAdd, kRemove };
  Mode mode = Mode::kReplace;
  std::vector<std::string> flags;
};
struct CopyMessages {  // → Result<CopyResult>; move = MOVE (source expunged by the backend)
  std::string user;
  std::string from;
  std::string to;
  std::vector<MessageInfo> messages;  // ascending uid
  bool move = false;
};
struct CopyResult {
  uint32_t uidvalidity = 0;
  std::vector<uint32_t> uids;  // new uid of each message, in the same order
};
struct AppendMessage {  // → Result<AppendResult>; NotFound = [TRYCREATE]
  std::string user;
  std::string folder;
  std::vector<std::string> flags;
  int64_t internal_date_ms = 0;  // 0 = now
  std::string message;
  int32_t internal_date_zone = 0;  // the zone the client gave the date in, minutes east of UTC
};
struct AppendResult {
  uint32_t uidvalidity = 0;
  uint32_t uid = 0;
};
struct ExpungeMessages {  // → Status; durable when OK
  std::string user;
  std::string folder;
  std::vector<MessageInfo> messages;
};

// protocol::SaslStep: one AUTHENTICATE SCRAM-SHA-256 response (its state
// lives in the backend) → protocol::SaslReply.
using Request = std::variant<Login, ListFolders, CreateFolder, DeleteFolder, RenameFolder,
                             Subscribe, OpenFolder, FetchBody, StoreFlags, CopyMessages,
                             AppendMessage, ExpungeMessages, protocol::SaslStep>;
using Step = protocol::Step<Request>;

// The answer to each request, in the same order as Request's alternatives:
// Login → Result<std::string>; ListFolders → Result<std::vector<FolderInfo>>;
// Create/Delete/Rename/Subscribe/StoreFlags/ExpungeMessages → Status;
// OpenFolder → Result<Snapshot>; FetchBody → Result<std::string>;
// CopyMessages → Result<CopyResult>; AppendMessage → Result<AppendResult>.
// PermissionDenied/NotFound at Login → NO [AUTHENTICATIONFAILED];
// ResourceExhausted at Login (the login throttle) → NO [UNAVAILABLE] Too many
// failed logins (a counted error); Unavailable anywhere → NO [UNAVAILABLE]
// (the client may retry).
using Response =
    std::variant<Result<std::string>, Result<std::vector<FolderInfo>>, Status, Result<Snapshot>,
                 Result<CopyResult>, Result<AppendResult>, protocol::SaslReply>;

class Session {
 public:
  Session(const Limits& limits, SessionInfo info);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void Start();                       // queues "* OK [CAPABILITY ...] ready"
  void Feed(std::string_view bytes);  // appends client bytes
  void OnEof();
  void OnIdleTimeout();  // "* BYE autologout" and close
  void OnShutdown();     // finishes the in-flight request, then "* BYE" and close

  // While the session waits for input and wants to be woken without it
  // (IDLE), the interval after which the driver calls OnPoll(); nullopt
  // otherwise. OnPoll makes the next Next() issue an OpenFolder request.
  std::optional<std::chrono::milliseconds> PollInterval() const;
  void OnPoll();

  Step Next();
  // REQUIRES: the last Next() returned kRequest; the response matches it.
  void Complete(Response response);
  // The handshake of the last kStartTls step succeeded (the connection is
  // secure; still not authenticated) or failed (the session closes without
  // a reply). REQUIRES: the last Next() returned kStartTls.
  void OnTlsStarted();
  void OnTlsFailed();
  // The connection as the session sees it now (secure after OnTlsStarted).
  const protocol::Transport& transport() const;

  std::string TakeOutput();
  bool HasOutput() const;

  struct Counters {
    uint64_t ok = 0;         // tagged OK
    uint64_t no = 0;         // tagged NO
    uint64_t bad = 0;        // tagged BAD (and untagged BAD)
    uint64_t errors = 0;     // counted errors
    uint64_t no_memory = 0;  // commands refused NO [LIMIT]: a literal did not fit the budget
  };
  const Counters& counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace porcupine::imap
