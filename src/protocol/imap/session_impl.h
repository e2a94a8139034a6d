// Internal state of imap::Session, shared by the files that implement it:
//   session.cc          lifecycle, the Next() loop, the parse-ahead queue, tagged and
//                       untagged responses, error accounting, backend requests
//   session_view.cc     the selected folder's view: sequence sets, sync with the backend
//                       (OpenFolder) and the EXPUNGE/EXISTS/FETCH diff, the body cache
//   command_table.cc    the command table, dispatch; CAPABILITY NOOP LOGOUT ID ENABLE
//                       NAMESPACE CHECK
//   command_auth.cc     LOGIN, AUTHENTICATE PLAIN (SASL-IR)
//   command_folder.cc   CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE STATUS
//   command_list.cc     LIST LSUB
//   command_select.cc   SELECT EXAMINE CLOSE UNSELECT EXPUNGE (and UID EXPUNGE)
//   command_append.cc   APPEND
//   command_idle.cc     IDLE
//   command_fetch.cc    FETCH
//   command_search.cc   SEARCH
//   command_store.cc    STORE
//   command_copy.cc     COPY MOVE
// Not part of the contract; include only from those files and tests.
//
// Design notes:
// * A command that needs the backend calls Send<T>(request, continuation);
//   Next() hands the request out, Complete() runs the continuation, which
//   either answers the command (tagged response) or sends the next request.
//   Exactly one command runs at a time; pipelined commands wait in `queue`.
// * \Recent (RFC 3501 §2.3.2): the backend keeps each folder's horizon and
//   hands the messages above it to the first session that is shown them by
//   an OpenFolder with claim_recent (SELECT, and every re-read of a
//   read-write selection); they join View's recent set and stay there for
//   the rest of the selection, and the RECENT count goes out with EXISTS. EXAMINE shows the
//   unclaimed messages as recent without claiming them, and its re-reads add none. "* n RECENT"
//   goes out at SELECT/EXAMINE and after a re-read whenever the count changed; \Recent is shown in
//   FLAGS, matched by SEARCH RECENT/NEW/OLD and never stored (STORE and APPEND drop it).
// * STORE sends the change (mode and flags), not the result, so that
//   sessions changing different flags of a message concurrently do not
//   undo each other; its FETCH replies come from the re-read that follows
//   (see StoreEcho), i.e. from the backend's flags.
// * Expunges made elsewhere are held as "ghosts" in the view while the
//   running command is FETCH, STORE or SEARCH (RFC 3501 §7.4.1, not their
//   UID forms) and reported when the next command that allows it ends.
// * A UIDVALIDITY change or the selected folder vanishing ends the session
//   with BYE: IMAP4rev1 has no way to deselect a client unasked.
#pragma once

#include <cassert>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/invariant.h"
#include "mime/message.h"
#include "protocol/imap/parser.h"
#include "protocol/imap/session.h"

namespace porcupine::imap {

// APPEND/COPY/MOVE refused because the server lacks room now (its message
// memory budget, a store's disk): a server limit (RFC 5530 LIMIT), not the
// user's quota.
inline constexpr const char* kNoResources =
    "[LIMIT] Not enough server resources for the message now, try again later";

enum class State { kNotAuthenticated, kAuthenticated, kSelected, kLogout };

// What the next client line means while a command is in progress.
enum class Mode {
  kCommands,      // commands (the reader's normal mode)
  kSaslResponse,  // AUTHENTICATE: a base64 response line (raw-line mode)
  kIdle,          // IDLE: waiting for DONE (raw-line mode)
};

// One reader event parsed ahead and waiting for its turn, so that every
// response, the literal continuations included, comes out in command order.
struct Pending {
  enum class Kind { kCommand, kError, kFatal, kContinue };
  Kind kind = Kind::kCommand;
  Command command;
  std::string error;  // kError, kFatal
  std::string tag;    // kError: the tag if it was read
  bool delayed = false;
  bool no_memory = false;  // kError: a literal did not fit the memory budget
  MemoryReservation held;  // kCommand: its literals' octets
};

// The command being executed.
struct Current {
  std::string tag;
  std::string name;  // "FETCH" or "UID FETCH", for the tagged text
  bool uid = false;
  // Untagged EXPUNGE may be sent (RFC 3501 §7.4.1).
  bool expunge_allowed = false;
};

struct ViewMessage {
  MessageInfo info;
  bool expunged = false;  // gone in the backend, not yet reported (a ghost)
  bool recent = false;    // in this selection's recent set (shown as \Recent)
};

// The flags a FETCH shows: the stored ones, with \Recent first if recent.
std::vector<std::string> ShownFlags(const ViewMessage& m);

// The selected folder as the client knows it: message i has sequence
// number i + 1; ascending uid.
struct View {
  std::string name;  // UTF-8, as the backend names it
  bool read_only = false;
  uint32_t uidvalidity = 0;
  uint32_t uidnext = 0;
  std::vector<ViewMessage> messages;
  std::vector<std::string> keywords;  // announced in FLAGS so far
  uint32_t recent_reported = 0;       // the count in the last "* n RECENT"

  uint32_t max_uid() const { return messages.empty() ? 0 : messages.back().info.uid; }
  uint32_t exists() const { return static_cast<uint32_t>(messages.size()); }
  uint32_t recent() const {
    uint32_t n = 0;
    for (const ViewMessage& m : messages) n += m.recent ? 1 : 0;
    return n;
  }
};

// What a STORE asks of the re-read that follows it: the FETCH (FLAGS)
// replies for its messages, which show the backend's flags (with UID for
// UID STORE). With .SILENT only a message whose flags differ from what
// this STORE alone would have made them (another session changed it too)
// is reported.
struct StoreEcho {
  struct Target {
    uint32_t uid = 0;
    std::vector<std::string> expected;  // the view's flags with the change applied
  };
  std::vector<Target> targets;  // ascending uid
  bool silent = false;
  bool uid = false;
  bool applied = false;  // set by ApplySnapshot; false when the re-read failed or was skipped

  const Target* Find(uint32_t uid) const;
};

struct Session::Impl {
  Impl(const Limits& l, SessionInfo i);

  // --- session.cc
  Step Next();
  void Complete(Response response);
  std::optional<Step> StepCommands();
  std::optional<Step> StepRaw();
  void FillQueue();
  void RunPending(Pending p);
  void Untagged(std::string_view text);  // "* text\r\n"
  // Tagged responses end the current command.
  void Ok(std::string_view text);
  void No(std::string_view text);
  void Bad(std::string_view text);  // a counted error
  void Tagged(std::string_view status, std::string_view text);
  // NO with the response code and text that fit a backend error.
  void Fail(const Status& status);
  void CountError();
  void Bye(std::string_view text);  // untagged BYE, then close
  bool Tarpit() const;
  template <typename T>
  void Send(imap::Request request, std::function<void(T&)> k);

  // --- command_table.cc
  using Handler = void (Impl::*)(Command& c);
  enum CommandFlags : unsigned {
    kNotAuthenticated = 1u << 0,  // valid before login
    kAuthenticated = 1u << 1,     // valid after login
    kSelected = 1u << 2,          // valid with a folder selected
    kUidForm = 1u << 3,           // has a UID form
    kEndsPipeline = 1u << 4,      // may switch the reader to raw lines: parse no further
    kSequenceNumbers = 1u << 5,   // FETCH/STORE/SEARCH: no EXPUNGE unless in UID form
  };
  // Judges the arguments read before a literal (CommandReader::LiteralCheck).
  using BeforeLiteral = const char* (*)(const std::vector<Token>& args);
  struct CommandSpec {
    std::string_view name;
    Handler handler;
    unsigned flags;
    BeforeLiteral before_literal = nullptr;  // nullptr: every literal is accepted
  };
  static const CommandSpec* FindCommand(std::string_view name);
  // The reader's literal check: the command's BeforeLiteral, if it has one.
  static const char* CheckBeforeLiteral(std::string_view name, const std::vector<Token>& args);
  void Dispatch(Command& c);
  // BADs and returns false unless min <= args <= max.
  bool Arity(const Command& c, size_t min, size_t max, std::string_view usage);
  std::string Capabilities() const;
  void CmdCapability(Command& c);
  void CmdNoop(Command& c);
  void CmdLogout(Command& c);
  void CmdId(Command& c);
  void CmdEnable(Command& c);
  void CmdNamespace(Command& c);
  void CmdCheck(Command& c);
  void CmdStartTls(Command& c);
  bool OffersStartTls() const {
    return transport.tls_available && !transport.secure && state == State::kNotAuthenticated;
  }
  // Drops everything the client sent that is not executed yet.
  void DiscardInput();

  // --- command_auth.cc
  void CmdLogin(Command& c);
  bool RefuseCleartext();
  void CmdAuthenticate(Command& c);
  void SaslLine(std::string_view line);
  void FinishPlain(std::string_view base64);
  void SendScram(std::string_view base64, bool first);
  void CompleteScram(protocol::SaslReply& reply);
  void StartLogin(std::string user, std::string password);

  // --- command_folder.cc
  // A mailbox argument: modified UTF-7 decoded, INBOX normalised. BADs
  // and returns nullopt when it is not an astring or not valid mUTF-7.
  std::optional<std::string> MailboxArg(const Token& t);
  void CmdCreate(Command& c);
  void CmdDelete(Command& c);
  void CmdRename(Command& c);
  void CmdSubscribe(Command& c);
  void CmdUnsubscribe(Command& c);
  void SubscribeTo(Command& c, bool subscribe);
  void CmdStatus(Command& c);

  // --- command_list.cc
  void CmdList(Command& c);
  void CmdLsub(Command& c);
  void ListOrLsub(Command& c, bool lsub);

  // --- command_select.cc
  void CmdSelect(Command& c);
  void CmdExamine(Command& c);
  void SelectFolder(Command& c, bool read_only);
  void CmdClose(Command& c);
  void CmdUnselect(Command& c);
  void CmdExpunge(Command& c);
  void Deselect();

  // --- session_view.cc
  // Re-reads the selected folder and reports the differences, then runs
  // `done` (not when the session ended). Skipped while shutting down. A
  // read-write selection claims the new recent messages. `echo` (may be
  // null) asks for a STORE's replies.
  void Sync(std::function<void()> done, std::shared_ptr<StoreEcho> echo = nullptr,
            bool idle_poll = false);
  void ApplySnapshot(Snapshot snapshot, StoreEcho* echo);
  // Untagged RECENT when the view's count differs from the last reported.
  void ReportRecent();
  void FlushExpunges();  // reports ghosts, when allowed
  // Removes view messages at `indexes` (ascending), sending EXPUNGE for each.
  void ExpungeIndexes(const std::vector<size_t>& indexes);
  void AnnounceKeywords();
  bool ExpungeAllowed() const;
  // The view indexes (ascending) a sequence or UID set names. BADs and
  // returns nullopt on a malformed set or a sequence number past EXISTS.
  std::optional<std::vector<size_t>> ResolveSet(const Token& t, bool uid);
  std::shared_ptr<const mime::ParsedMessage> CachedBody(uint32_t uid) const;
  std::shared_ptr<const mime::ParsedMessage> CacheBody(uint32_t uid, std::string raw);

  // --- command_append.cc
  void CmdAppend(Command& c);
  // APPEND's BeforeLiteral: the flags and date-time are checked before the
  // client is asked for the message ("+"), and before a LITERAL+ message
  // is read at all.
  static const char* AppendBeforeLiteral(const std::vector<Token>& args);

  // --- command_idle.cc
  void CmdIdle(Command& c);
  void IdleLine(std::string_view line);
  void IdlePoll();

  // --- command_fetch.cc
  struct FetchJob;
  void CmdFetch(Command& c);
  void FetchSetSeen(std::shared_ptr<FetchJob> job);
  void FetchNext(std::shared_ptr<FetchJob> job);
  void FetchOne(FetchJob& job, size_t index, const mime::ParsedMessage* parsed);

  // --- command_search.cc
  struct SearchJob;
  void CmdSearch(Command& c);
  void SearchNext(std::shared_ptr<SearchJob> job);

  // --- command_store.cc
  void CmdStore(Command& c);
  // The STORE's replies when no re-read reported them: its own result.
  void StoreWithoutSync(const StoreEcho& echo);

  // --- command_copy.cc
  void CmdCopy(Command& c);
  void CmdMove(Command& c);
  void CopyOrMove(Command& c, bool move);
  void CopyDone(Result<CopyResult>& r, const std::vector<uint32_t>& src, bool move,
                const std::string& dest);

  const Limits limits;
  const SessionInfo info;
  protocol::Transport transport;  // info.transport, secure after STARTTLS
  CommandReader reader;
  std::string out;
  Counters counters;

  State state = State::kNotAuthenticated;
  Mode mode = Mode::kCommands;
  // AUTHENTICATE in progress: which mechanism the next response line is for.
  enum class Sasl { kPlain, kScram, kScramFinal } sasl = Sasl::kPlain;
  bool scram_first = false;  // the next SCRAM response starts the exchange
  std::string scram_user;    // SCRAM succeeded as this user; OK after the empty response
  bool closed = false;
  bool eof = false;
  bool shutting_down = false;
  bool poll_due = false;       // OnPoll during IDLE
  bool tls_due = false;        // STARTTLS answered: the next Next() is kStartTls
  bool tls_running = false;    // the handshake runs; only OnTlsStarted/Failed moves on
  bool parse_blocked = false;  // a kEndsPipeline command is queued
  std::deque<Pending> queue;
  uint64_t commands = 0;
  int errors = 0;

  std::string user;  // canonical name from Login
  std::optional<View> view;
  std::optional<Current> cur;
  // The literals of the running command, held until its tagged response
  // (an APPEND's message lives in the backend request until then).
  MemoryReservation cur_held;

  bool awaiting = false;                  // a request is out (or about to be)
  std::optional<imap::Request> outgoing;  // set until Next() hands it out
  std::function<void(Response&)> continuation;

  // The last few parsed bodies of the selected folder, most recent last.
  std::deque<std::pair<uint32_t, std::shared_ptr<const mime::ParsedMessage>>> body_cache;
};

// The Response alternative a request must be answered with; a mismatch is
// the driver's bug (asserted in debug builds, BYE in release).
template <typename T>
void Session::Impl::Send(imap::Request request, std::function<void(T&)> k) {
  outgoing = std::move(request);
  awaiting = true;
  continuation = [this, k = std::move(k)](Response& r) {
    T* value = std::get_if<T>(&r);
    PORCUPINE_INVARIANT(value != nullptr, "response type does not match the request");
    if (value == nullptr) return Bye("internal server error");
    k(*value);
  };
}

}  // namespace porcupine::imap
