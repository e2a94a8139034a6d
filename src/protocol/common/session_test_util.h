// Test-only pieces every protocol's session tests share
// (src/protocol/*/session_test_util.h and session_test.cc):
//   FakeScram          a stand-in for the backend's SCRAM-SHA-256 exchange;
//   EscapeBytes        how a transcript line shows the bytes of a line;
//   SessionDriver      the network driver's part (feeding, stepping, TLS
//                      handshakes, holding a request) that each protocol's
//                      Driver builds on, recording a transcript;
//   TlsCase and the Expect... checks of the STARTTLS/STLS transition.
// Header-only so the libraries never link it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/common/sasl.h"
#include "protocol/common/session.h"

namespace porcupine::protocol::testing {

// The backend's SCRAM-SHA-256 exchange for the engines' tests (the real one
// is node/scram.h, GNU SASL). A first response that is base64 of "n,,n=..."
// gets a challenge; any other first response is malformed; a final response
// with p=good succeeds as alice@example.test (data "v=ok"), any other fails
// like a wrong password (PermissionDenied), as every failed proof does.
inline SaslReply FakeScram(const SaslStep& step) {
  using Kind = SaslReply::Kind;
  std::string m;
  SaslReply r;
  r.kind = Kind::kFailure;
  if (!DecodeBase64(step.response, &m)) {
    r.status = Status::InvalidArgument("base64");
  } else if (step.first && m.rfind("n,,n=", 0) == 0) {
    r.kind = Kind::kChallenge;
    r.data = EncodeBase64("r=nonce,s=c2FsdA==,i=4096");
  } else if (step.first) {
    r.status = Status::InvalidArgument("malformed");
  } else if (m.find("p=good") != std::string::npos) {
    r.kind = Kind::kSuccess;
    r.user = "alice@example.test";
    r.data = EncodeBase64("v=ok");
  } else {
    r.status = Status::PermissionDenied("bad proof");
  }
  return r;
}

struct EscapeOptions {
  bool double_backslash = true;  // "\" as "\\" (IMAP shows it as is: flags are full of it)
  bool escape_8bit = false;      // bytes 0x80-0xFF as \xHH too
};

// Renders bytes for a transcript line: tab as \t, other controls (and
// 8-bit bytes, if asked) as \xHH, everything else as is.
inline std::string EscapeBytes(std::string_view s, EscapeOptions options) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\\' && options.double_backslash) {
      out += "\\\\";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && options.escape_8bit)) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

// Plays the network driver's part for a session engine (protocol/common/
// session.h) and records everything observable as a transcript of lines:
//   S: <line>                  bytes the session wrote, one per CRLF line
//   -- delay <n>ms / -- close  tarpit and close steps
//   -- starttls [failed]       a TLS handshake (and whether it failed)
// plus whatever `Derived` writes for a backend request. `Derived` (CRTP)
// provides, reachable from this class:
//   static std::string Escape(std::string_view)  a line's bytes for the transcript
//   void Record(const RequestT&)   note a request in the transcript
//   void Answer(RequestT)          answer it: the session's Complete(...)
template <typename Derived, typename SessionT, typename RequestT>
class SessionDriver {
 public:
  void Start() {
    session_.Start();
    Pump();
  }
  // One client write.
  void Feed(std::string_view bytes) { FeedInPieces(bytes, std::max<size_t>(bytes.size(), 1)); }
  // One client write that arrives in pieces of `fragment` bytes, pumping
  // after each. A STARTTLS handshake cuts the write: its later pieces would
  // reach the TLS layer (and fail the handshake), never the session.
  void FeedInPieces(std::string_view bytes, size_t fragment) {
    write_cut_ = false;
    for (size_t i = 0; i < bytes.size() && !closed_ && !write_cut_; i += fragment) {
      FeedPiece(bytes.substr(i, fragment));
    }
  }
  // The next TLS handshake fails.
  void FailNextTls() { fail_tls_ = true; }
  void Eof() { Event(&SessionT::OnEof); }
  void Timeout() { Event(&SessionT::OnIdleTimeout); }
  void Shutdown() { Event(&SessionT::OnShutdown); }
  // The next request is recorded but left unanswered until Release().
  void Hold() { hold_next_ = true; }
  void Release() {
    if (!held_) return;
    RequestT r = std::move(*held_);
    held_.reset();
    derived().Answer(std::move(r));
    Pump();
  }

  const std::string& transcript() const { return transcript_; }
  bool closed() const { return closed_; }
  // Some output chunk did not end in CRLF (a framing bug).
  bool unterminated() const { return unterminated_; }
  SessionT& session() { return session_; }
  // Every request the session made, in order.
  const std::vector<RequestT>& requests() const { return requests_; }

 protected:
  template <typename... Args>
  explicit SessionDriver(Args&&... session_args) : session_(std::forward<Args>(session_args)...) {}

  // An event of the session's (OnEof, OnIdleTimeout, ...), then its steps.
  void Event(void (SessionT::*event)()) {
    if (closed_) return;
    (session_.*event)();
    Flush();
    if (!held_) Pump();
  }

  // Splits CRLF-terminated text into transcript lines; an unterminated tail
  // is marked so a missing CRLF shows up in a diff.
  void AppendLines(std::string_view prefix, std::string_view text) {
    while (!text.empty()) {
      size_t end = text.find("\r\n");
      std::string_view line = text.substr(0, end);
      transcript_ += std::string(prefix) + Derived::Escape(line);
      if (end == std::string_view::npos) {
        transcript_ += " [no CRLF]\n";
        unterminated_ = true;
        return;
      }
      transcript_ += "\n";
      text.remove_prefix(end + 2);
    }
  }

  SessionT session_;
  std::string transcript_;

 private:
  using Step = protocol::Step<RequestT>;

  Derived& derived() { return static_cast<Derived&>(*this); }

  void FeedPiece(std::string_view bytes) {
    if (closed_ || write_cut_) return;
    session_.Feed(bytes);
    if (!held_) Pump();
  }

  void Pump() {
    for (;;) {
      Step step = session_.Next();
      Flush();
      switch (step.kind) {
        case Step::Kind::kNeedInput:
          return;
        case Step::Kind::kClose:
          closed_ = true;
          transcript_ += "-- close\n";
          return;
        case Step::Kind::kDelay:
          transcript_ += "-- delay " + std::to_string(step.delay.count()) + "ms\n";
          break;
        case Step::Kind::kStartTls:
          write_cut_ = true;
          if (std::exchange(fail_tls_, false)) {
            transcript_ += "-- starttls failed\n";
            session_.OnTlsFailed();
          } else {
            transcript_ += "-- starttls\n";
            session_.OnTlsStarted();
          }
          break;
        case Step::Kind::kRequest:
          requests_.push_back(*step.request);
          derived().Record(*step.request);
          if (std::exchange(hold_next_, false)) {
            held_ = std::move(*step.request);
            return;
          }
          derived().Answer(std::move(*step.request));
          break;
      }
    }
  }

  void Flush() {
    if (session_.HasOutput()) AppendLines("S: ", session_.TakeOutput());
  }

  bool closed_ = false;
  bool unterminated_ = false;
  bool write_cut_ = false;  // a handshake ended the current client write
  bool fail_tls_ = false;
  bool hold_next_ = false;
  std::optional<RequestT> held_;
  std::vector<RequestT> requests_;
};

// A STARTTLS (SMTP, IMAP) or STLS (POP3) transition: a list of client writes
// (a handshake cuts the write it happens in: its later bytes would reach the
// TLS layer) on a connection with `transport`.
struct TlsCase {
  const char* name;
  Transport transport;
  std::vector<std::string> writes;
  std::string expected;  // the transcript after the greeting
  bool fail_handshake = false;
  bool secure_after = false;
};

// Replays every case at every fragment size from its longest write down to
// one byte, then EOF: each replay must give `greeting(transport)` +
// `expected`, leave the connection secure as `secure_after` says, and send
// nothing to the backend (what was pipelined behind the command is dropped).
// `Driver` is one of the protocols' (constructed from `limits` and `info`
// with the case's transport).
template <typename Driver, typename Limits, typename Info, typename Greeting>
void ExpectTlsTranscripts(const std::vector<TlsCase>& cases, const Limits& limits, const Info& info,
                          Greeting greeting) {
  for (const TlsCase& c : cases) {
    SCOPED_TRACE(c.name);
    size_t longest = 1;
    for (const std::string& w : c.writes) longest = std::max(longest, w.size());
    for (size_t k = longest; k >= 1; --k) {
      Info with_transport = info;
      with_transport.transport = c.transport;
      Driver d(limits, with_transport);
      d.Start();
      if (c.fail_handshake) d.FailNextTls();
      for (const std::string& w : c.writes) d.FeedInPieces(w, k);
      d.Eof();
      ASSERT_EQ(d.transcript(), greeting(c.transport) + c.expected) << "fragment size " << k;
      EXPECT_EQ(d.session().transport().secure, c.secure_after);
      EXPECT_TRUE(d.requests().empty()) << "a dropped command reached the backend";
    }
  }
}

// The engine itself (no driver) drops what was pipelined behind the TLS
// command: `s` (started, TLS available) reads `input` (the command and
// more) in one piece, asks for the handshake, and after it has nothing
// to say and wants input. `*before` (if given): what it wrote before the
// handshake.
template <typename SessionT>
void ExpectStartTlsDropsBufferedInput(SessionT& s, std::string_view input,
                                      std::string* before = nullptr) {
  using Kind = typename decltype(s.Next())::Kind;
  s.Feed(input);
  ASSERT_EQ(s.Next().kind, Kind::kStartTls);
  std::string out = s.TakeOutput();
  if (before != nullptr) *before = std::move(out);
  s.OnTlsStarted();
  EXPECT_EQ(s.Next().kind, Kind::kNeedInput);
  EXPECT_FALSE(s.HasOutput());
}

// A shutdown (and an idle timeout, ignored) during the handshake that
// `command` starts on `s` (started, TLS available) says nothing until the
// handshake is over; then the session says `bye` and closes.
template <typename SessionT>
void ExpectShutdownWaitsForHandshake(SessionT& s, std::string_view command, std::string_view bye) {
  using Kind = typename decltype(s.Next())::Kind;
  s.Feed(command);
  ASSERT_EQ(s.Next().kind, Kind::kStartTls);
  s.TakeOutput();
  s.OnShutdown();
  s.OnIdleTimeout();  // ignored during the handshake
  EXPECT_FALSE(s.HasOutput());
  s.OnTlsStarted();
  EXPECT_EQ(s.Next().kind, Kind::kClose);
  EXPECT_EQ(s.TakeOutput(), bye);
}

// `run(fragment)` drives a fresh session through `input` in pieces of
// `fragment` bytes and returns the transcript: whole, and in pieces of 1, 2,
// 3, 7 and a random size (drawn from `rng`), it must be the same.
template <typename Run>
void ExpectSplitIndependent(const std::string& input, std::mt19937* rng, Run run) {
  std::string whole = run(input.size());
  for (size_t k : {size_t{1}, size_t{2}, size_t{3}, size_t{7}, 1 + (*rng)() % input.size()}) {
    ASSERT_EQ(run(k), whole) << "fragment " << k << " input " << ::testing::PrintToString(input);
  }
}

}  // namespace porcupine::protocol::testing
