// FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8). Items that need the
// message cost one FetchBody request per message, answered in order; a
// non-PEEK body section sets \Seen first, with one StoreFlags request for
// all the messages it changes, and their responses then carry FLAGS.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "protocol/imap/encode.h"
#include "protocol/imap/fetch.h"
#include "protocol/imap/session_impl.h"

namespace porcupine::imap {

struct Session::Impl::FetchJob {
  FetchSpec spec;
  std::vector<size_t> indexes;
  std::vector<uint32_t> seen_set;  // uids whose \Seen this FETCH set (ascending)
  size_t pos = 0;
  bool uid = false;
  bool missing = false;  // some message was expunged before its body was read
};

void Session::Impl::CmdFetch(Command& c) {
  if (!Arity(c, 2, 2, "FETCH sequence-set items")) return;
  std::string error;
  std::optional<FetchSpec> spec = ParseFetchSpec(c.args[1], &error);
  if (!spec) return Bad(error);
  std::optional<std::vector<size_t>> indexes = ResolveSet(c.args[0], c.uid);
  if (!indexes) return;
  auto job = std::make_shared<FetchJob>();
  job->spec = std::move(*spec);
  job->indexes = std::move(*indexes);
  job->uid = c.uid;
  if (job->spec.sets_seen && !view->read_only) return FetchSetSeen(std::move(job));
  FetchNext(std::move(job));
}

// A failure to set \Seen does not fail the FETCH: the client still gets
// its data, and the flag simply stays unset.
void Session::Impl::FetchSetSeen(std::shared_ptr<FetchJob> job) {
  StoreFlags req{user, view->name, {}, StoreFlags::Mode::kAdd, {"\\Seen"}};
  for (size_t i : job->indexes) {
    const ViewMessage& m = view->messages[i];
    if (m.expunged || HasFlag(m.info.flags, "\\Seen")) continue;
    req.messages.push_back(m.info);
  }
  if (req.messages.empty()) return FetchNext(std::move(job));
  std::vector<uint32_t> changed;
  for (const MessageInfo& m : req.messages) changed.push_back(m.uid);
  Send<Status>(std::move(req), [this, job, changed](Status& s) {
    if (s.ok()) {
      size_t k = 0;
      for (ViewMessage& m : view->messages) {
        if (k < changed.size() && m.info.uid == changed[k]) {
          AddFlag(&m.info.flags, "\\Seen");
          job->seen_set.push_back(changed[k++]);
        }
      }
    }
    FetchNext(job);
  });
}

void Session::Impl::FetchOne(FetchJob& job, size_t index, const mime::ParsedMessage* parsed) {
  const ViewMessage& m = view->messages[index];
  bool seen_now = std::binary_search(job.seen_set.begin(), job.seen_set.end(), m.info.uid);
  const auto seq = static_cast<uint32_t>(index + 1);
  if (!m.recent) {
    out += RenderFetch(seq, m.info, job.spec, parsed, job.uid, seen_now);
    return;
  }
  MessageInfo shown = m.info;  // FLAGS with \Recent
  shown.flags = ShownFlags(m);
  out += RenderFetch(seq, shown, job.spec, parsed, job.uid, seen_now);
}

void Session::Impl::FetchNext(std::shared_ptr<FetchJob> job) {
  while (job->pos < job->indexes.size()) {
    size_t index = job->indexes[job->pos];
    const ViewMessage& m = view->messages[index];
    if (!job->spec.needs_body) {
      FetchOne(*job, index, nullptr);
      ++job->pos;
      continue;
    }
    if (m.expunged) {
      job->missing = true;
      ++job->pos;
      continue;
    }
    if (std::shared_ptr<const mime::ParsedMessage> body = CachedBody(m.info.uid)) {
      FetchOne(*job, index, body.get());
      ++job->pos;
      continue;
    }
    Send<Result<std::string>>(
        FetchBody{user, view->name, m.info}, [this, job, index](Result<std::string>& r) {
          if (!r.ok() && r.status().code() != Code::kNotFound) return Fail(r.status());
          if (r.ok()) {
            std::shared_ptr<const mime::ParsedMessage> body =
                CacheBody(view->messages[index].info.uid, std::move(r.value()));
            FetchOne(*job, index, body.get());
          } else {
            job->missing = true;  // expunged elsewhere meanwhile
          }
          ++job->pos;
          FetchNext(job);
        });
    return;
  }
  if (job->missing) return No("[EXPUNGEISSUED] Some messages were expunged");
  Ok(cur->name + " completed");
}

}  // namespace porcupine::imap
