// libFuzzer target for imap::Session (and through it the command parser,
// literals, sequence sets, SEARCH and FETCH specifications, the MIME layer
// behind FETCH, and the view that follows the backend).
//
// Input: byte 0 picks a fragment size (1..256), byte 1 picks which backend
// requests fail; the rest is what the client sends, in writes separated by
// 0xFF (protocol/common/fuzz_session.h: the TLS transition is fuzzed too).
// The session is driven to the end against the fake backend twice, whole and
// fragmented, and must produce the same transcript, made only of whole CRLF
// lines, and close at EOF.
//
// Built by CMake as imap_session_fuzz (`make fuzz`, clang) and replayed over its corpus
// by the test fuzz_replay.imap_session_fuzz in every build (docs/fuzzing.md):
//   build-fuzz/imap_session_fuzz src/protocol/imap/fuzz/corpus
#include <string>
#include <string_view>

#include "protocol/common/fuzz_session.h"
#include "protocol/imap/session_test_util.h"

namespace {

using porcupine::Status;
using porcupine::imap::Limits;
using porcupine::imap::testing::Driver;

std::string Run(std::string_view input, size_t fragment, uint8_t failures) {
  Limits limits;
  limits.parser.max_line = 512;
  limits.parser.max_literal = 4096;
  limits.parser.max_command = 8192;
  limits.parser.max_depth = 16;
  limits.parser.max_tokens = 1000;
  limits.max_message_size = 4096;
  limits.tarpit_delay = std::chrono::milliseconds(1);
  porcupine::imap::SessionInfo info = porcupine::imap::testing::TestInfo();
  info.transport.tls_available = true;  // STARTTLS/STLS and the transition are fuzzed too
  Driver d(limits, info);
  auto& b = d.backend();
  b.AddFolder("alice", "Sent", "\\Sent", true);
  b.AddFolder("alice", "a/b");
  b.AddMessage(
      "alice", "INBOX",
      "From: A <a@example.org>\r\nTo: alice@example.test\r\nSubject: =?utf-8?q?h=C3=A9?=\r\n"
      "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n"
      "\r\nhello\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody\r\n"
      "--x--\r\n",
      {"\\Seen"});
  b.AddMessage("alice", "INBOX", "Subject: two\r\n\r\n", {"$Work"});
  b.AddMessage("alice", "INBOX", "no header at all");
  b.AddMessage("alice", "Sent", "Subject: sent\r\n\r\nx\r\n");
  static const char* const kKinds[] = {"open",   "fetch",   "store",  "copy",
                                       "append", "expunge", "create", "rename"};
  for (int bit = 0; bit < 8; ++bit) {
    if (failures & (1u << bit)) {
      b.FailNext(kKinds[bit], bit % 2 ? Status::Unavailable("x") : Status::NotFound("x"));
    }
  }
  return porcupine::fuzz::RunSession(d, input, fragment);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return porcupine::fuzz::SessionWholeAndFragmented(data, size, Run);
}
