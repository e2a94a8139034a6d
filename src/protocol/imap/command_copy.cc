// COPY (RFC 3501 §6.4.7), MOVE (RFC 6851) and their UID forms, with
// COPYUID (RFC 4315) and TRYCREATE.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "protocol/imap/encode.h"
#include "protocol/imap/session_impl.h"

namespace porcupine::imap {

void Session::Impl::CmdCopy(Command& c) { CopyOrMove(c, false); }

void Session::Impl::CmdMove(Command& c) { CopyOrMove(c, true); }

void Session::Impl::CopyOrMove(Command& c, bool move) {
  if (!Arity(c, 2, 2, move ? "MOVE sequence-set mailbox" : "COPY sequence-set mailbox")) return;
  std::optional<std::vector<size_t>> indexes = ResolveSet(c.args[0], c.uid);
  if (!indexes) return;
  std::optional<std::string> dest = MailboxArg(c.args[1]);
  if (!dest) return;
  if (move && view->read_only) return No("[CANNOT] Mailbox is read-only");
  CopyMessages req{user, view->name, *dest, {}, move};
  for (size_t i : *indexes) {
    const ViewMessage& m = view->messages[i];
    // All or nothing (RFC 2180 §4.4.1): a message expunged elsewhere fails it.
    if (m.expunged) return No("[EXPUNGEISSUED] Some messages were expunged");
    req.messages.push_back(m.info);
  }
  if (req.messages.empty()) return Ok(move ? "MOVE completed" : "COPY completed");
  std::vector<uint32_t> src;
  for (const MessageInfo& m : req.messages) src.push_back(m.uid);
  Send<Result<CopyResult>>(std::move(req), [this, src, move, d = *dest](Result<CopyResult>& r) {
    CopyDone(r, src, move, d);
  });
}

void Session::Impl::CopyDone(Result<CopyResult>& r, const std::vector<uint32_t>& src, bool move,
                             const std::string& dest) {
  const std::string done = std::string(move ? "MOVE" : "COPY") + " completed";
  if (!r.ok()) {
    Code code = r.status().code();
    if (code == Code::kNotFound) return No("[TRYCREATE] Mailbox does not exist");
    if (code == Code::kResourceExhausted) return No(kNoResources);
    return Fail(r.status());
  }
  std::string code;
  if (r.value().uids.size() == src.size()) {
    code = "[COPYUID " + std::to_string(r.value().uidvalidity) + " " + CompactSet(src) + " " +
           CompactSet(r.value().uids) + "] ";
  }
  if (!move) {
    if (view->name != dest) return Ok(code + done);
    return Sync([this, text = code + done] { Ok(text); });
  }
  // RFC 6851 §4.3: COPYUID in an untagged OK, then the EXPUNGEs.
  Untagged("OK " + code + "Moved");
  std::vector<size_t> moved;
  for (size_t i = 0; i < view->messages.size(); ++i) {
    if (std::binary_search(src.begin(), src.end(), view->messages[i].info.uid)) {
      moved.push_back(i);
    }
  }
  ExpungeIndexes(moved);
  Sync([this, done] { Ok(done); });
}

}  // namespace porcupine::imap
