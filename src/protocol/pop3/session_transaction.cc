// TRANSACTION state (RFC 1939 §5, §6): the snapshot taken at login, DELE
// marks, and the Commit request that is the UPDATE state.
#include <cassert>
#include <string>
#include <utility>

#include "core/invariant.h"
#include "protocol/pop3/command.h"
#include "protocol/pop3/reply.h"
#include "protocol/pop3/session_impl.h"

namespace porcupine::pop3 {
namespace {

std::string Number(uint64_t n) { return std::to_string(n); }

// "1 message", "2 messages".
std::string Messages(uint64_t n) { return Number(n) + (n == 1 ? " message" : " messages"); }

}  // namespace

void Maildrop::Mark(size_t index) {
  Message& m = messages[index];
  PORCUPINE_INVARIANT(!m.deleted, "a message marked deleted twice");
  if (m.deleted) return;  // the totals stay right
  m.deleted = true;
  --live_count;
  live_octets -= m.size;
  PORCUPINE_INVARIANT(Consistent(), "maildrop totals disagree with its messages");
}

void Maildrop::UnmarkAll() {
  for (Message& m : messages) m.deleted = false;
  live_count = messages.size();
  live_octets = 0;
  for (const Message& m : messages) live_octets += m.size;
}

bool Maildrop::Consistent() const {
  size_t count = 0;
  uint64_t octets = 0;
  for (const Message& m : messages) {
    if (m.deleted) continue;
    ++count;
    octets += m.size;
  }
  return count == live_count && octets == live_octets;
}

// Not a counted error when well-formed but unknown or marked: a client
// racing another session's deletions does that honestly.
std::optional<size_t> Session::Impl::LookupMessage(std::string_view arg) {
  std::optional<uint64_t> n = ParseNumber(arg);
  if (!n) {
    Error("invalid message number");
    return std::nullopt;
  }
  if (*n == 0 || *n > maildrop.messages.size()) {
    Err("no such message");
    return std::nullopt;
  }
  size_t index = static_cast<size_t>(*n - 1);
  if (maildrop.messages[index].deleted) {
    Err("message " + Number(*n) + " already deleted");
    return std::nullopt;
  }
  return index;
}

std::string Session::Impl::MaildropSummary() const {
  return "maildrop has " + Messages(maildrop.live_count) + " (" + Number(maildrop.live_octets) +
         " octets)";
}

void Session::Impl::CmdStat(const Args&) {
  Ok(Number(maildrop.live_count) + " " + Number(maildrop.live_octets));
}

void Session::Impl::CmdList(const Args& args) {
  if (!args.words.empty()) {
    std::optional<size_t> i = LookupMessage(args.words[0]);
    if (i) Ok(Number(*i + 1) + " " + Number(maildrop.messages[*i].size));
    return;
  }
  Ok(Messages(maildrop.live_count) + " (" + Number(maildrop.live_octets) + " octets)");
  for (size_t i = 0; i < maildrop.messages.size(); ++i) {
    const Message& m = maildrop.messages[i];
    if (!m.deleted) AppendListLine(&out, Number(i + 1) + " " + Number(m.size));
  }
  AppendTerminator(&out);
}

void Session::Impl::CmdUidl(const Args& args) {
  if (!args.words.empty()) {
    std::optional<size_t> i = LookupMessage(args.words[0]);
    if (i) Ok(Number(*i + 1) + " " + maildrop.messages[*i].uid);
    return;
  }
  Ok("unique-id listing follows");
  for (size_t i = 0; i < maildrop.messages.size(); ++i) {
    const Message& m = maildrop.messages[i];
    if (!m.deleted) AppendListLine(&out, Number(i + 1) + " " + m.uid);
  }
  AppendTerminator(&out);
}

void Session::Impl::CmdRetr(const Args& args) {
  std::optional<size_t> i = LookupMessage(args.words[0]);
  if (!i) return;
  retrieve_index = *i;
  top_lines.reset();
  Request(Awaiting::kRetrieve, Retrieve{user, maildrop.messages[*i].uid});
}

// The line count is checked before the message number so that a malformed
// command never costs a retrieval.
void Session::Impl::CmdTop(const Args& args) {
  std::optional<uint64_t> lines = ParseNumber(args.words[1]);
  if (!lines) return Error("invalid line count");
  std::optional<size_t> i = LookupMessage(args.words[0]);
  if (!i) return;
  retrieve_index = *i;
  top_lines = lines;
  Request(Awaiting::kRetrieve, Retrieve{user, maildrop.messages[*i].uid});
}

void Session::Impl::CmdDele(const Args& args) {
  std::optional<size_t> i = LookupMessage(args.words[0]);
  if (!i) return;
  maildrop.Mark(*i);
  Ok("message " + Number(*i + 1) + " deleted");
}

void Session::Impl::CmdRset(const Args&) {
  maildrop.UnmarkAll();
  Ok(MaildropSummary());
}

// The +OK is sent only once the Commit is durable, so a client that sees it
// may forget the messages.
void Session::Impl::QuitTransaction() {
  Commit commit{user, {}};
  for (const Message& m : maildrop.messages) {
    if (m.deleted) commit.uids.push_back(m.uid);
  }
  if (commit.uids.empty()) return CloseOk(SigningOff());
  commit_count = commit.uids.size();
  Request(Awaiting::kCommit, std::move(commit));
}

// The size in "+OK n octets" is the listed one, so that LIST and RETR agree.
void Session::Impl::CompleteRetrieve(RetrieveResult* result) {
  if (result == nullptr) return CloseErr("[SYS/TEMP] internal server error");
  if (!result->ok()) {
    if (result->status().code() == Code::kNotFound) return Err("no such message");
    return Err("[SYS/TEMP] message temporarily unavailable, try again later");
  }
  const std::string& body = result->value();
  if (top_lines) {
    Ok("top of message follows");
    AppendDotStuffed(&out, TopOfMessage(body, *top_lines));
  } else {
    Ok(Number(maildrop.messages[retrieve_index].size) + " octets");
    AppendDotStuffed(&out, body);
  }
}

void Session::Impl::CompleteCommit(const Status* status) {
  if (status == nullptr) return CloseErr("[SYS/TEMP] internal server error");
  if (!status->ok()) return CloseErr("[SYS/TEMP] some deleted messages not removed");
  CloseOk(SigningOff() + " (" + Messages(commit_count) + " deleted)");
}

}  // namespace porcupine::pop3
