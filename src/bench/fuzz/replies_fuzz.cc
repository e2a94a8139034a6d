// libFuzzer target for the bench's reply parsers (SMTP and POP3).
//
// Input: byte 0 picks a fragment size (1..64), byte 1 is a bit mask saying
// which POP3 replies are multi-line; the rest is server output. Each parser
// runs over the input whole and fragmented and must yield the same replies and
// the same error, and respect its limits.
//
// Built by CMake as bench_replies_fuzz (`make fuzz`, clang) and replayed over its corpus
// by the test fuzz_replay.bench_replies_fuzz in every build (docs/fuzzing.md):
//   build-fuzz/bench_replies_fuzz src/bench/fuzz/corpus
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "bench/replies.h"

namespace {

using porcupine::bench::Pop3ReplyParser;
using porcupine::bench::ReplyLimits;
using porcupine::bench::SmtpReplyParser;

ReplyLimits Limits() {
  ReplyLimits l;
  l.max_line = 256;
  l.max_smtp_lines = 8;
  l.max_body = 1024;
  return l;
}

std::string RunSmtp(std::string_view input, size_t fragment) {
  SmtpReplyParser p(Limits());
  std::string out;
  for (size_t pos = 0; pos < input.size(); pos += fragment) {
    p.Feed(input.substr(pos, fragment));
    while (true) {
      auto r = p.Next();
      if (!r.ok()) return out + "error:" + r.status().message();
      if (!r->has_value()) break;
      if ((*r)->code < 200 || (*r)->code > 599 || (*r)->lines.size() > 8) std::abort();
      out += (*r)->Text() + "\n";
    }
  }
  return out;
}

std::string RunPop3(std::string_view input, size_t fragment, uint8_t multiline) {
  Pop3ReplyParser p(Limits());
  std::string out;
  int n = 0;
  for (size_t pos = 0; pos < input.size(); pos += fragment) {
    p.Feed(input.substr(pos, fragment));
    while (true) {
      auto r = p.Next((multiline >> (n % 8)) & 1);
      if (!r.ok()) return out + "error:" + r.status().message();
      if (!r->has_value()) break;
      if ((*r)->body.size() > 1024) std::abort();
      out += ((*r)->ok ? "+" : "-") + (*r)->text + "|" + (*r)->body + "\n";
      ++n;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t fragment = 1 + data[0] % 64;
  uint8_t multiline = data[1];
  std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  // "Line too long" may be reported at a different point but must agree on
  // the replies before it, so compare only whole-input results that succeed.
  std::string a = RunSmtp(input, input.size() + 1);
  std::string b = RunSmtp(input, fragment);
  if (a.find("error:") == std::string::npos && a != b) std::abort();
  std::string c = RunPop3(input, input.size() + 1, multiline);
  std::string d = RunPop3(input, fragment, multiline);
  if (c.find("error:") == std::string::npos && c != d) std::abort();
  return 0;
}
