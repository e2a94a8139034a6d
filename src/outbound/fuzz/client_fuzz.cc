// libFuzzer target for outbound::Client (and through it the reply parser,
// the EHLO extension parser, the STARTTLS/AUTH paths, pipelining and the
// DATA encoder): the fuzzer plays the server.
//
// Input: byte 0 picks a fragment size (1..256); byte 1 picks the options
// (bit 0: no pipelining, bits 1-2: TLS policy none/opportunistic/required,
// bit 3: AUTH PLAIN credentials, bit 4: an 8-bit message, bit 5: SMTPUTF8,
// bit 6: a second message, bit 7: the TLS handshake fails). The rest is what
// the server sends, as writes separated by 0xFF; each write answers one
// kReceive step (an empty write is a timeout), and when they run out the
// connection is lost. The engine runs twice, each write fed whole and in
// fragments, and must produce the same transcript; it must end in kClose
// within a bounded number of steps, write only whole CRLF lines, and decide
// every recipient of every message it started.
//
// Not built by default (the module build globs only the folder's top level).
// Build and run with clang, from the repository root:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
//     src/outbound/fuzz/client_fuzz.cc $(ls src/outbound/*.cc | grep -v _test) \
//     src/protocol/common/line_reader.cc src/protocol/common/sasl.cc src/core/status.cc \
//     $(pkg-config --libs libsodium) -o client_fuzz
//   ./client_fuzz src/outbound/fuzz/corpus
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "outbound/client.h"

namespace {

using porcupine::outbound::Client;
using porcupine::outbound::ClientOptions;
using porcupine::outbound::Envelope;
using porcupine::outbound::MessageResult;
using porcupine::outbound::TlsPolicy;
using Kind = Client::Step::Kind;

constexpr int kMaxSteps = 20000;

// Checks that a write is whole CRLF lines with no bare CR or LF.
void CheckLines(std::string_view out) {
  if (out.size() < 2 || !out.ends_with("\r\n")) std::abort();
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r')) std::abort();
    if (out[i] == '\r' && (i + 1 == out.size() || out[i + 1] != '\n')) std::abort();
  }
}

void Record(const MessageResult& r, size_t recipients, std::string* t) {
  if (r.recipients.size() != recipients) std::abort();
  for (const auto& rr : r.recipients) {
    *t += "R: " + rr.recipient + " " + std::to_string(static_cast<int>(rr.outcome.kind)) + " " +
          rr.outcome.status.ToString() + " " + rr.outcome.text + "\n";
  }
}

std::string Run(std::string_view input, size_t fragment, uint8_t flags) {
  ClientOptions o;
  o.helo_name = "client.test";
  o.pipelining = (flags & 1) == 0;
  int tls = (flags >> 1) & 3;
  o.tls = tls == 0 ? TlsPolicy::kNone : tls == 1 ? TlsPolicy::kOpportunistic : TlsPolicy::kRequired;
  if (flags & 8) {
    o.auth_user = "u";
    o.auth_password = "p";
    o.auth_without_tls = true;
  }
  o.reply_limits.max_line = 256;
  o.reply_limits.max_lines = 16;
  Envelope env;
  env.reverse_path = "a@here.test";
  env.recipients = {"b@there.test", "c@there.test", "d\r@bad"};
  env.size = 12;
  env.eight_bit = (flags & 16) != 0;
  env.smtputf8 = (flags & 32) != 0;
  int messages = (flags & 64) ? 2 : 1;
  const std::string body = ".x\nhi\r\n.\r\n";

  Client c(o);
  std::string t;
  int started = 0;
  int results = 0;
  bool body_sent = false;
  for (int step = 0;; ++step) {
    if (step > kMaxSteps) std::abort();
    Client::Step s = c.Next();
    if (s.kind == Kind::kClose) {
      if (auto r = c.TakeResult()) {
        Record(*r, env.recipients.size(), &t);
        ++results;
      }
      if (c.Next().kind != Kind::kClose) std::abort();
      break;
    }
    switch (s.kind) {
      case Kind::kSend: {
        std::string out = c.TakeOutput();
        CheckLines(out);
        t += "C: " + out;
        break;
      }
      case Kind::kReceive: {
        if (input.empty()) {
          c.OnConnectionLost("eof");
          t += "-- eof\n";
          break;
        }
        size_t end = input.find('\xff');
        std::string_view write = input.substr(0, end);
        input.remove_prefix(end == std::string_view::npos ? input.size() : end + 1);
        if (write.empty()) {
          c.OnTimeout();
          t += "-- timeout\n";
          break;
        }
        for (size_t pos = 0; pos < write.size(); pos += fragment) {
          c.Feed(write.substr(pos, fragment));
        }
        break;
      }
      case Kind::kStartTls:
        if (flags & 128) {
          c.OnTlsFailed("fuzz");
        } else {
          c.OnTlsStarted();
        }
        t += "-- tls\n";
        break;
      case Kind::kNeedBody:
        if (!body_sent) {
          c.AddBody(body);
          body_sent = true;
        } else {
          c.EndBody();
        }
        break;
      case Kind::kReady:
        if (auto r = c.TakeResult()) {
          Record(*r, env.recipients.size(), &t);
          ++results;
        }
        if (started < messages) {
          ++started;
          body_sent = false;
          c.StartMessage(env);
        } else {
          c.Quit();
        }
        break;
      default:
        std::abort();
    }
  }
  if (results != started) std::abort();  // every started message has a result
  if (c.TakeResult()) std::abort();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t fragment = 1 + data[0];
  uint8_t flags = data[1];
  std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);
  if (Run(input, input.size() + 1, flags) != Run(input, fragment, flags)) std::abort();
  return 0;
}
