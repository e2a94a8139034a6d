// SEARCH and UID SEARCH (RFC 3501 §6.4.4). Each message is first judged on
// what the view knows (flags, dates, sizes, numbers); only when a header or
// text key decides is its body fetched, one FetchBody request at a time.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "protocol/imap/search.h"
#include "protocol/imap/session_impl.h"

namespace porcupine::imap {

struct Session::Impl::SearchJob {
  SearchProgram program;
  size_t pos = 0;  // view index
  bool uid = false;
  std::vector<uint32_t> hits;
};

void Session::Impl::CmdSearch(Command& c) {
  SearchParseError error = SearchParseError::kNone;
  std::string message;
  std::optional<SearchProgram> program = ParseSearch(c.args, &error, &message);
  if (!program) {
    if (error == SearchParseError::kBadCharset) {
      return No("[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
    }
    return Bad(message);
  }
  auto job = std::make_shared<SearchJob>();
  job->program = std::move(*program);
  job->uid = c.uid;
  SearchNext(std::move(job));
}

void Session::Impl::SearchNext(std::shared_ptr<SearchJob> job) {
  const View& v = *view;
  while (job->pos < v.messages.size()) {
    size_t i = job->pos;
    const ViewMessage& m = v.messages[i];
    SearchTarget target{&m.info, static_cast<uint32_t>(i + 1), v.exists(), v.max_uid(), m.recent};
    const SearchKey& root = job->program.root;
    Match r = Evaluate(root, target, nullptr);
    if (r == Match::kNeedBody) {
      std::shared_ptr<const mime::ParsedMessage> body = CachedBody(m.info.uid);
      if (!body && !m.expunged) {
        Send<Result<std::string>>(
            FetchBody{user, v.name, m.info}, [this, job](Result<std::string>& res) {
              if (!res.ok() && res.status().code() != Code::kNotFound) return Fail(res.status());
              const View& w = *view;
              size_t k = job->pos;
              const ViewMessage& msg = w.messages[k];
              if (res.ok()) {
                std::shared_ptr<const mime::ParsedMessage> parsed =
                    CacheBody(msg.info.uid, std::move(res.value()));
                SearchTarget t{&msg.info, static_cast<uint32_t>(k + 1), w.exists(), w.max_uid(),
                               msg.recent};
                if (Evaluate(job->program.root, t, parsed.get()) == Match::kYes) {
                  job->hits.push_back(job->uid ? msg.info.uid : static_cast<uint32_t>(k + 1));
                }
              }
              ++job->pos;  // a message gone meanwhile matches nothing
              SearchNext(job);
            });
        return;
      }
      r = body ? Evaluate(root, target, body.get()) : Match::kNo;
    }
    if (r == Match::kYes) job->hits.push_back(job->uid ? m.info.uid : static_cast<uint32_t>(i + 1));
    ++job->pos;
  }
  std::string line = "SEARCH";
  for (uint32_t n : job->hits) line += " " + std::to_string(n);
  Untagged(line);
  Ok(cur->name + " completed");
}

}  // namespace porcupine::imap
