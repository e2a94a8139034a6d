// Golden whole-dialogue transcripts: testdata/*.txt (format in
// testdata/README.md). Each file is replayed twice:
//  1. line by line: consecutive client lines form one write, and the
//     transcript the session produces, interleaved with the file's own client
//     lines, comments and directives, must reproduce the file exactly;
//  2. as a byte stream split at every fragment size from the longest write
//     down to one byte, which must produce the same session lines.
// PORCUPINE_UPDATE_GOLDEN=1 rewrites the files from the actual output.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "protocol/common/golden_test_util.h"
#include "protocol/pop3/session_test_util.h"

namespace porcupine::pop3 {
namespace {

namespace fs = std::filesystem;
using testing::Driver;

fs::path TestdataDir() { return fs::path(PORCUPINE_SOURCE_DIR) / "src/protocol/pop3/testdata"; }

using protocol::golden::ClientBytes;
using protocol::golden::IsClientLine;
using protocol::golden::SplitLines;
using protocol::golden::StartsWith;
using protocol::golden::Unescape;

// Lines the session produces (never echoed from the file).
bool IsOutputLine(std::string_view l) {
  return StartsWith(l, "S: ") || StartsWith(l, "R: ") || StartsWith(l, "-- ");
}

// Directives that set the scene before the session starts.
bool IsSetup(std::string_view l) {
  return StartsWith(l, "!limit ") || StartsWith(l, "!message ") || StartsWith(l, "!retrieve ") ||
         StartsWith(l, "!commit ") || StartsWith(l, "!tls ") || StartsWith(l, "!peer ");
}

bool IsEvent(std::string_view l) {
  return l == "!eof" || l == "!timeout" || l == "!shutdown" || l == "!hold" || l == "!release" ||
         l == "!tls-fail";
}

Status ParseStatus(std::string_view name) {
  if (name == "ok") return Status::Ok();
  if (name == "notfound") return Status::NotFound("scripted");
  if (name == "unavailable") return Status::Unavailable("scripted");
  return Status::Internal("scripted");
}

void ApplyLimit(std::string_view kv, Limits* l) {
  size_t eq = kv.find('=');
  std::string key(kv.substr(0, eq));
  uint64_t v = std::stoull(std::string(kv.substr(eq + 1)));
  if (key == "max_command_line") {
    l->max_command_line = v;
  } else if (key == "soft_error_limit") {
    l->soft_error_limit = static_cast<int>(v);
  } else if (key == "hard_error_limit") {
    l->hard_error_limit = static_cast<int>(v);
  } else if (key == "tarpit_delay_ms") {
    l->tarpit_delay = std::chrono::milliseconds(v);
  } else if (key == "max_commands") {
    l->max_commands = v;
  } else {
    ADD_FAILURE() << "unknown limit " << key;
  }
}

// One golden file, parsed.
struct Script {
  Limits limits;
  protocol::Transport transport = protocol::golden::LoopbackTransport();
  std::vector<std::pair<std::string, std::string>> messages;  // uid, body
  std::vector<Status> retrieve_results;
  std::vector<Status> commit_results;
  // Input split at events: bytes to feed, then the event after them ("" at the end).
  std::vector<std::pair<std::string, std::string>> segments;
  std::string expected_output;  // only the session's lines
};

void ApplySetup(std::string_view l, Script* s) {
  if (protocol::golden::ApplyTlsSetup(l, &s->transport)) return;
  if (protocol::golden::ApplyPeerSetup(l, &s->transport)) return;
  if (StartsWith(l, "!limit ")) {
    std::istringstream kvs{std::string(l.substr(7))};
    for (std::string kv; kvs >> kv;) ApplyLimit(kv, &s->limits);
  } else if (StartsWith(l, "!message ")) {
    std::string_view rest = l.substr(9);
    size_t sp = rest.find(' ');
    std::string body = sp == std::string_view::npos ? "" : Unescape(rest.substr(sp + 1));
    s->messages.emplace_back(std::string(rest.substr(0, sp)), body);
  } else if (StartsWith(l, "!retrieve ")) {
    s->retrieve_results.push_back(ParseStatus(l.substr(10)));
  } else if (StartsWith(l, "!commit ")) {
    s->commit_results.push_back(ParseStatus(l.substr(8)));
  }
}

Script ParseScript(const std::vector<std::string>& lines) {
  Script s;
  s.segments.emplace_back();
  for (const std::string& l : lines) {
    if (IsSetup(l)) {
      ApplySetup(l, &s);
    } else if (IsEvent(l)) {
      s.segments.back().second = l;
      s.segments.emplace_back();
    } else if (IsClientLine(l)) {
      s.segments.back().first += ClientBytes(l);
    } else if (IsOutputLine(l)) {
      s.expected_output += l + "\n";
      if (protocol::golden::IsHandshakeLine(l)) s.segments.emplace_back();
    } else if (!l.empty() && l[0] != '#') {
      ADD_FAILURE() << "unrecognised line: " << l;
    }
  }
  return s;
}

void Prepare(const Script& script, Driver* d) {
  for (const auto& [uid, body] : script.messages) d->backend().AddMessage(uid, body);
  for (const Status& st : script.retrieve_results) d->backend().retrieve_results.push_back(st);
  for (const Status& st : script.commit_results) d->backend().commit_results.push_back(st);
}

SessionInfo InfoFor(const Script& script) {
  SessionInfo info = testing::TestInfo();
  info.transport = script.transport;
  return info;
}

void FireEvent(Driver* d, const std::string& event) {
  if (event == "!tls-fail") d->FailNextTls();
  if (event == "!eof") d->Eof();
  if (event == "!timeout") d->Timeout();
  if (event == "!shutdown") d->Shutdown();
  if (event == "!hold") d->Hold();
  if (event == "!release") d->Release();
}

// Pass 1: the interleaved replay. Returns the reconstructed file text.
std::string ReplayInterleaved(const std::vector<std::string>& lines, const Script& script) {
  Driver d(script.limits, InfoFor(script));
  Prepare(script, &d);
  std::string actual;
  size_t consumed = 0;  // transcript bytes already copied into `actual`
  std::string pending;
  bool started = false;
  auto flush = [&] {
    if (!pending.empty()) d.Feed(std::exchange(pending, std::string()));
    actual += d.transcript().substr(consumed);
    consumed = d.transcript().size();
  };
  for (const std::string& l : lines) {
    bool header = l.empty() || l[0] == '#' || IsSetup(l);
    if (!started && !header) {
      d.Start();
      started = true;
      flush();  // the greeting comes before the first client line
    }
    if (!IsClientLine(l)) flush();
    if (IsOutputLine(l)) continue;
    actual += l + "\n";
    if (IsClientLine(l)) pending += ClientBytes(l);
    if (IsEvent(l)) FireEvent(&d, l);
  }
  flush();
  return actual;
}

// Pass 2: every fragment size.
void ReplayFragmented(const Script& script) {
  size_t longest = 1;
  for (const auto& seg : script.segments) longest = std::max(longest, seg.first.size());
  for (size_t k = longest; k >= 1; --k) {
    Driver d(script.limits, InfoFor(script));
    Prepare(script, &d);
    d.Start();
    for (const auto& [bytes, event] : script.segments) {
      d.FeedInPieces(bytes, k);
      FireEvent(&d, event);
    }
    ASSERT_EQ(d.transcript(), script.expected_output) << "fragment size " << k;
  }
}

TEST(GoldenTranscriptTest, AllFilesReplay) {
  protocol::golden::ReplayAll(
      TestdataDir(), 10u,
      [](const std::vector<std::string>& lines) {
        return ReplayInterleaved(lines, ParseScript(lines));
      },
      [](const std::string& actual) { ReplayFragmented(ParseScript(SplitLines(actual))); });
}

}  // namespace
}  // namespace porcupine::pop3
