// libFuzzer target for smtp::Session (and through it the command and path
// parsers, DATA unstuffing and the limits, and the STARTTLS transition).
//
// Input: byte 0 picks a fragment size (1..256), byte 1 picks which Deliver
// requests fail (and its top bit a submission listener: AUTH); the rest is what the client sends,
// in writes separated by 0xFF (protocol/common/fuzz_session.h: the TLS transition is fuzzed too).
// The session is driven to the end against the fake backend twice, whole and
// fragmented, and must produce the same transcript, made only of whole CRLF
// lines, and close at EOF.
//
// Built by CMake as smtp_session_fuzz (`make fuzz`, clang) and replayed over its corpus
// by the test fuzz_replay.smtp_session_fuzz in every build (docs/fuzzing.md):
//   build-fuzz/smtp_session_fuzz src/protocol/smtp/fuzz/corpus
#include <string>
#include <string_view>

#include "protocol/common/fuzz_session.h"
#include "protocol/smtp/session_test_util.h"

namespace {

using porcupine::Status;
using porcupine::smtp::Limits;
using porcupine::smtp::testing::Driver;

std::string Run(std::string_view input, size_t fragment, uint8_t failures) {
  Limits limits;
  limits.max_message_bytes = 4096;
  limits.max_command_line = 128;
  limits.max_data_line = 256;
  limits.max_recipients = 4;
  limits.tarpit_delay = std::chrono::milliseconds(1);
  porcupine::smtp::SessionInfo info = porcupine::smtp::testing::TestInfo();
  info.transport.tls_available = true;
  info.submission = (failures & 0x80) != 0;  // AUTH and the submission rules too
  Driver d(limits, info);
  for (int bit = 0; bit < 8; ++bit) {
    if (failures & (1u << bit)) {
      d.backend().deliver_results.push_back(bit % 2 ? Status::Unavailable("x")
                                                    : Status::ResourceExhausted("x"));
    } else {
      d.backend().deliver_results.push_back(Status::Ok());
    }
  }
  return porcupine::fuzz::RunSession(d, input, fragment);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return porcupine::fuzz::SessionWholeAndFragmented(data, size, Run);
}
