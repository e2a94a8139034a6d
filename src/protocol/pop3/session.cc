#include "protocol/pop3/session.h"

#include <cassert>
#include <utility>

#include "core/invariant.h"
#include "protocol/pop3/reply.h"
#include "protocol/pop3/session_impl.h"

namespace porcupine::pop3 {
namespace {

// The Response alternative a request kind must be answered with; nullptr
// (and an assertion in debug builds) when the driver sent another one.
template <typename T>
T* Expect(Response* response) {
  T* value = std::get_if<T>(response);
  PORCUPINE_INVARIANT(value != nullptr, "response type does not match the request");
  return value;
}

}  // namespace

Session::Impl::Impl(const Limits& l, SessionInfo i)
    : limits(l), info(std::move(i)), transport(info.transport), reader(l.max_command_line) {}

void Session::Impl::Ok(std::string_view text) {
  AppendOk(&out, text);
  ++counters.ok;
}

void Session::Impl::Err(std::string_view text) {
  AppendErr(&out, text);
  ++counters.err;
}

// POP3 has exactly one response per command, so at the hard limit the
// "too many errors" line replaces the command's own -ERR rather than
// following it (a pipelining client would take it for the next reply).
void Session::Impl::Error(std::string_view text) {
  ++counters.errors;
  if (++errors >= limits.hard_error_limit) return CloseErr("[SYS/PERM] too many errors");
  Err(text);
}

void Session::Impl::CloseOk(std::string_view text) {
  Ok(text);
  phase = Phase::kClosed;
}

void Session::Impl::CloseErr(std::string_view text) {
  Err(text);
  phase = Phase::kClosed;
}

void Session::Impl::Request(Awaiting what, pop3::Request request) {
  awaiting = what;
  outgoing = std::move(request);
  phase = Phase::kAwaiting;
}

std::string Session::Impl::SigningOff() const {
  return info.server_hostname + " POP3 server signing off";
}

Step Session::Impl::Next() {
  for (;;) {
    switch (phase) {
      case Phase::kClosed:
        return Step::Close();
      case Phase::kAwaiting:
        if (outgoing) {
          Step s = Step::Do(std::move(*outgoing));
          outgoing.reset();
          return s;
        }
        // The driver pulled again without answering: a broken invariant.
        PORCUPINE_INVARIANT(false, "Next() called while a request is outstanding");
        return Step::Close();
      case Phase::kStartTls:
        phase = Phase::kTls;
        return Step::StartTls();
      case Phase::kTls:
        PORCUPINE_INVARIANT(false, "Next() called during the TLS handshake");
        return Step::Close();
      case Phase::kCommand:
      case Phase::kSaslResponse:
        if (std::optional<Step> step = PullLine()) return *step;
        break;
    }
  }
}

// Reads one line and executes it. Above the soft error limit the line is
// held across a kDelay step first, so every reply to an abusive client (and
// every further password guess) costs it tarpit_delay.
std::optional<Step> Session::Impl::PullLine() {
  PendingLine line;
  const bool tarpit = errors > limits.soft_error_limit && limits.tarpit_delay.count() > 0;
  switch (gate.Pull(reader, tarpit, &line)) {
    case protocol::CommandGate::Kind::kNeedInput:
      if (!eof) return Step::NeedInput();
      // RFC 1939 §6: without QUIT there is no UPDATE; close silently.
      phase = Phase::kClosed;
      return std::nullopt;
    case protocol::CommandGate::Kind::kPause:
      return Step::Delay(limits.tarpit_delay);
    case protocol::CommandGate::Kind::kLine:
      break;
  }
  Execute(line);
  return std::nullopt;
}

// A bare LF ends a line like CRLF does: POP3 has no data phase a bare LF
// could smuggle a command into, and lenient clients exist. A CR anywhere
// else, or a NUL, is refused.
void Session::Impl::Execute(const PendingLine& line) {
  bool sasl = phase == Phase::kSaslResponse;
  if (++commands > limits.max_commands) return CloseErr("[SYS/PERM] too many commands");
  if (line.too_long || line.bare_cr || line.text.find('\0') != std::string::npos) {
    phase = Phase::kCommand;  // a broken SASL response ends the exchange
    if (line.too_long) return Error("line too long");
    if (line.bare_cr) return Error("bare CR in command");
    return Error("NUL in command");
  }
  if (sasl) return SaslResponse(line.text);
  Dispatch(line.text);
}

void Session::Impl::Complete(Response response) {
  if (phase != Phase::kAwaiting || outgoing) {
    PORCUPINE_INVARIANT(false, "Complete() without an outstanding request");
    return;
  }
  phase = Phase::kCommand;
  switch (std::exchange(awaiting, Awaiting::kNothing)) {
    case Awaiting::kLogin:
      CompleteLogin(Expect<LoginResult>(&response));
      break;
    case Awaiting::kRetrieve:
      CompleteRetrieve(Expect<RetrieveResult>(&response));
      break;
    case Awaiting::kCommit:
      CompleteCommit(Expect<Status>(&response));
      break;
    case Awaiting::kSasl:
      CompleteSasl(Expect<protocol::SaslReply>(&response));
      break;
    case Awaiting::kNothing:
      PORCUPINE_INVARIANT(false, "awaiting nothing in kAwaiting");
      CloseErr("[SYS/TEMP] internal server error");
      break;
  }
  if (shutting_down && phase != Phase::kClosed) CloseErr("[SYS/TEMP] server shutting down");
}

// --- Session: the public face forwards to Impl.

Session::Session(const Limits& limits, SessionInfo info)
    : impl_(std::make_unique<Impl>(limits, std::move(info))) {}

Session::~Session() = default;

void Session::Start() { impl_->Ok(impl_->info.server_hostname + " POP3 ready"); }

void Session::Feed(std::string_view bytes) {
  if (impl_->phase != Phase::kClosed) impl_->reader.Feed(bytes);
}

void Session::OnEof() { impl_->eof = true; }

void Session::OnTlsStarted() {
  Impl& i = *impl_;
  PORCUPINE_INVARIANT(i.phase == Phase::kTls, "OnTlsStarted() without a kStartTls step");
  if (i.phase != Phase::kTls) return;
  // RFC 2595 §4: forget what the client said before the handshake.
  i.transport.secure = true;
  i.user_given.reset();
  i.reader.Clear();
  i.gate.Reset();
  i.phase = Phase::kCommand;
  if (i.shutting_down) i.CloseErr("[SYS/TEMP] server shutting down");
}

void Session::OnTlsFailed() {
  PORCUPINE_INVARIANT(impl_->phase == Phase::kTls, "OnTlsFailed() without a kStartTls step");
  impl_->phase = Phase::kClosed;
}

const protocol::Transport& Session::transport() const { return impl_->transport; }

void Session::OnIdleTimeout() {
  // A slow backend is not the client's fault: a timeout while a request is
  // out is ignored (the driver should not arm the idle timer then anyway).
  Phase p = impl_->phase;
  if (p != Phase::kCommand && p != Phase::kSaslResponse) return;
  impl_->CloseErr("[SYS/TEMP] autologout; idle for too long");
}

void Session::OnShutdown() {
  impl_->shutting_down = true;
  Phase p = impl_->phase;
  // Complete() or OnTlsStarted() closes.
  if (p != Phase::kCommand && p != Phase::kSaslResponse) return;
  // Marked messages stay: only a client's QUIT enters UPDATE (RFC 1939 §6).
  impl_->CloseErr("[SYS/TEMP] server shutting down");
}

Step Session::Next() { return impl_->Next(); }

void Session::Complete(Response response) { impl_->Complete(std::move(response)); }

std::string Session::TakeOutput() { return std::exchange(impl_->out, std::string()); }

bool Session::HasOutput() const { return !impl_->out.empty(); }

const Session::Counters& Session::counters() const { return impl_->counters; }

}  // namespace porcupine::pop3
