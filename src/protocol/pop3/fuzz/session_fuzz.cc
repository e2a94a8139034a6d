// libFuzzer target for pop3::Session (and through it the command parser,
// SASL PLAIN decoding and dot-stuffing).
//
// Input: byte 0 picks a fragment size (1..256), byte 1 picks which backend
// answers fail; the rest is what the client sends, in writes separated by
// 0xFF (protocol/common/fuzz_session.h: the TLS transition is fuzzed too). The session is driven to
// the end against the fake backend twice, whole and fragmented, and must
// produce the same transcript, made only of whole CRLF lines.
//
// Built by CMake as pop3_session_fuzz (`make fuzz`, clang) and replayed over its corpus
// by the test fuzz_replay.pop3_session_fuzz in every build (docs/fuzzing.md):
//   build-fuzz/pop3_session_fuzz src/protocol/pop3/fuzz/corpus
#include <string>
#include <string_view>

#include "protocol/common/fuzz_session.h"
#include "protocol/pop3/session_test_util.h"

namespace {

using porcupine::Status;
using porcupine::pop3::Limits;
using porcupine::pop3::testing::Driver;

std::string Run(std::string_view input, size_t fragment, uint8_t failures) {
  Limits limits;
  limits.max_command_line = 128;
  limits.tarpit_delay = std::chrono::milliseconds(1);
  porcupine::pop3::SessionInfo info = porcupine::pop3::testing::TestInfo();
  info.transport.tls_available = true;  // STARTTLS/STLS and the transition are fuzzed too
  Driver d(limits, info);
  d.backend().AddMessage("m1", "Subject: a\r\n\r\n.line\r\n..\r\n.\r\nend");
  d.backend().AddMessage("m2", "");
  d.backend().AddMessage("m3", "no header\n.\n");
  for (int bit = 0; bit < 4; ++bit) {
    if (failures & (1u << bit)) d.backend().retrieve_results.push_back(Status::NotFound("x"));
    if (failures & (16u << bit)) d.backend().commit_results.push_back(Status::Unavailable("x"));
  }
  return porcupine::fuzz::RunSession(d, input, fragment);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return porcupine::fuzz::SessionWholeAndFragmented(data, size, Run);
}
