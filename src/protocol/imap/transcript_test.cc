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
#include "protocol/imap/session_test_util.h"

namespace porcupine::imap {
namespace {

namespace fs = std::filesystem;
using testing::Driver;
using testing::FakeBackend;

fs::path TestdataDir() { return fs::path(PORCUPINE_SOURCE_DIR) / "src/protocol/imap/testdata"; }

using protocol::golden::ClientBytes;
using protocol::golden::IsClientLine;
using protocol::golden::SplitLines;
using protocol::golden::StartsWith;
using protocol::golden::Unescape;

// Lines the session produces (never echoed from the file).
bool IsOutputLine(std::string_view l) {
  return StartsWith(l, "S: ") || l == "S:" || StartsWith(l, "R: ") || StartsWith(l, "-- ");
}

// Directives that set the scene before the session starts.
bool IsSetup(std::string_view l) {
  return StartsWith(l, "!limit ") || StartsWith(l, "!folder ") || StartsWith(l, "!message ") ||
         StartsWith(l, "!tls ") || StartsWith(l, "!peer ");
}

// Directives that happen between client writes.
bool IsEvent(std::string_view l) {
  return l == "!eof" || l == "!timeout" || l == "!shutdown" || l == "!hold" || l == "!release" ||
         l == "!poll" || StartsWith(l, "!fail ") || StartsWith(l, "!append ") ||
         StartsWith(l, "!store ") || StartsWith(l, "!expunge ") || l == "!tls-fail";
}

Status ParseStatus(std::string_view name) {
  if (name == "ok") return Status::Ok();
  if (name == "notfound") return Status::NotFound("scripted");
  if (name == "unavailable") return Status::Unavailable("scripted");
  if (name == "exists") return Status::AlreadyExists("scripted");
  if (name == "denied") return Status::PermissionDenied("scripted");
  if (name == "invalid") return Status::InvalidArgument("scripted");
  if (name == "exhausted") return Status::ResourceExhausted("scripted");
  return Status::Internal("scripted");
}

std::vector<std::string> ParseFlags(std::string_view s) {
  std::vector<std::string> flags;
  if (s == "-") return flags;
  std::istringstream in{std::string(s)};
  for (std::string f; std::getline(in, f, ',');) flags.push_back(f);
  return flags;
}

// Splits "a b rest of line" into n words and the rest.
std::vector<std::string> Words(std::string_view s, size_t n) {
  std::vector<std::string> out;
  while (out.size() < n) {
    size_t sp = s.find(' ');
    out.emplace_back(s.substr(0, sp));
    s = sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
  }
  out.emplace_back(s);
  return out;
}

void ApplyLimit(std::string_view kv, Limits* l) {
  size_t eq = kv.find('=');
  std::string key(kv.substr(0, eq));
  uint64_t v = std::stoull(std::string(kv.substr(eq + 1)));
  if (key == "soft_error_limit") {
    l->soft_error_limit = static_cast<int>(v);
  } else if (key == "hard_error_limit") {
    l->hard_error_limit = static_cast<int>(v);
  } else if (key == "tarpit_delay_ms") {
    l->tarpit_delay = std::chrono::milliseconds(v);
  } else if (key == "max_commands") {
    l->max_commands = v;
  } else if (key == "max_pipelined") {
    l->max_pipelined = v;
  } else if (key == "idle_poll_ms") {
    l->idle_poll = std::chrono::milliseconds(v);
  } else if (key == "max_message_size") {
    l->max_message_size = v;
  } else if (key == "max_line") {
    l->parser.max_line = v;
  } else if (key == "max_literal") {
    l->parser.max_literal = v;
  } else {
    ADD_FAILURE() << "unknown limit " << key;
  }
}

// One golden file, parsed.
struct Script {
  Limits limits;
  protocol::Transport transport = protocol::golden::LoopbackTransport();
  std::vector<std::string> setup;  // !folder and !message lines, in order
  // Input split at events: bytes to feed, then the event after them ("" at the end).
  std::vector<std::pair<std::string, std::string>> segments;
  std::string expected_output;  // only the session's lines
};

Script ParseScript(const std::vector<std::string>& lines) {
  Script s;
  s.segments.emplace_back();
  for (const std::string& l : lines) {
    if (StartsWith(l, "!limit ")) {
      std::istringstream kvs{l.substr(7)};
      for (std::string kv; kvs >> kv;) ApplyLimit(kv, &s.limits);
    } else if (protocol::golden::ApplyTlsSetup(l, &s.transport) ||
               protocol::golden::ApplyPeerSetup(l, &s.transport)) {
    } else if (IsSetup(l)) {
      s.setup.push_back(l);
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

// !folder name [special-use|-] [subscribed]; !message folder flags body.
void Prepare(const Script& script, FakeBackend* b) {
  for (const std::string& l : script.setup) {
    if (StartsWith(l, "!folder ")) {
      std::vector<std::string> w = Words(l.substr(8), 2);
      b->AddFolder("alice", w[0], w[1] == "-" ? "" : w[1], w[2] == "subscribed");
    } else {
      std::vector<std::string> w = Words(l.substr(9), 2);
      b->AddMessage("alice", w[0], Unescape(w[2]), ParseFlags(w[1]));
    }
  }
}

SessionInfo InfoFor(const Script& script) {
  SessionInfo info = testing::TestInfo();
  info.transport = script.transport;
  return info;
}

void FireEvent(Driver* d, const std::string& event) {
  if (event == "!tls-fail") return d->FailNextTls();
  FakeBackend& b = d->backend();
  if (event == "!eof") d->Eof();
  if (event == "!timeout") d->Timeout();
  if (event == "!shutdown") d->Shutdown();
  if (event == "!hold") d->Hold();
  if (event == "!release") d->Release();
  if (event == "!poll") d->Poll();
  if (StartsWith(event, "!fail ")) {
    std::vector<std::string> w = Words(event.substr(6), 1);
    b.FailNext(w[0], ParseStatus(w[1]));
  }
  // Changes made "elsewhere", by another session.
  if (StartsWith(event, "!append ")) {
    std::vector<std::string> w = Words(event.substr(8), 2);
    b.AddMessage("alice", w[0], Unescape(w[2]), ParseFlags(w[1]));
  }
  if (StartsWith(event, "!store ")) {
    std::vector<std::string> w = Words(event.substr(7), 2);
    b.SetFlags("alice", w[0], static_cast<uint32_t>(std::stoul(w[1])), ParseFlags(w[2]));
  }
  if (StartsWith(event, "!expunge ")) {
    std::vector<std::string> w = Words(event.substr(9), 1);
    b.Expunge("alice", w[0], static_cast<uint32_t>(std::stoul(w[1])));
  }
}

// Pass 1: the interleaved replay. Returns the reconstructed file text.
std::string ReplayInterleaved(const std::vector<std::string>& lines, const Script& script) {
  Driver d(script.limits, InfoFor(script));
  Prepare(script, &d.backend());
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
    bool header = l.empty() || l[0] == '#' || IsSetup(l) || StartsWith(l, "!limit ");
    if (!started && !header) {
      d.Start();
      started = true;
      flush();  // the greeting comes before the first client line
    }
    if (!IsClientLine(l)) flush();
    if (IsOutputLine(l)) continue;
    actual += l + "\n";
    if (IsClientLine(l)) pending += ClientBytes(l);
    if (IsEvent(l)) {
      FireEvent(&d, l);
      flush();  // what the event caused comes right after it
    }
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
    Prepare(script, &d.backend());
    d.Start();
    for (const auto& [bytes, event] : script.segments) {
      d.FeedInPieces(bytes, k);
      FireEvent(&d, event);
    }
    ASSERT_EQ(d.transcript(), script.expected_output) << "fragment size " << k;
    ASSERT_FALSE(d.unterminated());
  }
}

TEST(TranscriptTest, AllFilesReplay) {
  protocol::golden::ReplayAll(
      TestdataDir(), 20u,
      [](const std::vector<std::string>& lines) {
        return ReplayInterleaved(lines, ParseScript(lines));
      },
      [](const std::string& actual) { ReplayFragmented(ParseScript(SplitLines(actual))); });
}

}  // namespace
}  // namespace porcupine::imap
