#include "protocol/smtp/session.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "core/invariant.h"
#include "protocol/common/sasl.h"
#include "protocol/smtp/command.h"
#include "protocol/smtp/path.h"
#include "protocol/smtp/reply.h"
#include "protocol/smtp/session_impl.h"

namespace porcupine::smtp {

Session::Impl::Impl(const Limits& l, SessionInfo i)
    : limits(l),
      info(std::move(i)),
      transport(info.transport),
      reader(std::max(l.max_command_line, l.max_auth_line)) {}

void Session::Impl::Reply(int code, std::string_view enhanced, std::string_view text) {
  AppendReply(&out, code, enhanced, text);
  ++counters.replies[code / 100];
}

void Session::Impl::ReplyLines(int code, const std::vector<std::string>& lines) {
  AppendMultilineReply(&out, code, lines);
  ++counters.replies[code / 100];
}

void Session::Impl::Error(int code, std::string_view enhanced, std::string_view text) {
  Reply(code, enhanced, text);
  ++counters.errors;
  if (++errors >= limits.hard_error_limit) CloseWith(421, "4.7.0", "Error: too many errors");
}

void Session::Impl::CloseWith(int code, std::string_view enhanced, std::string_view text) {
  Reply(code, enhanced, text);
  phase = Phase::kClosed;
}

void Session::Impl::Request(Awaiting what, smtp::Request request) {
  awaiting = what;
  outgoing = std::move(request);
  phase = Phase::kAwaiting;
}

void Session::Impl::ResetTransaction() { txn = Transaction{}; }

Step Session::Impl::Next() {
  for (;;) {
    std::optional<Step> step;
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
        step = PullCommand();
        break;
      case Phase::kData:
        step = PullData();
        break;
    }
    if (step) return *step;
  }
}

// Reads one command line and executes it. Above the soft error limit the
// line is held across a kDelay step first, so every reply to an abusive
// client costs it tarpit_delay.
std::optional<Step> Session::Impl::PullCommand() {
  PendingLine line;
  const bool tarpit = errors > limits.soft_error_limit && limits.tarpit_delay.count() > 0;
  switch (gate.Pull(reader, tarpit, &line)) {
    case protocol::CommandGate::Kind::kNeedInput:
      if (!eof) return Step::NeedInput();
      phase = Phase::kClosed;  // EOF: close without a reply
      return std::nullopt;
    case protocol::CommandGate::Kind::kPause:
      return Step::Delay(limits.tarpit_delay);
    case protocol::CommandGate::Kind::kLine:
      break;
  }
  if (auth.exchange != SaslMechanism::kNone) {
    // A SASL response line, not a command (it still counts as one).
    if (++commands > limits.max_commands) {
      CloseWith(421, "4.7.0", "Error: too many commands");
    } else {
      SaslResponse(line);
    }
    protocol::Wipe(&line.text);
    return std::nullopt;
  }
  Execute(line);
  return std::nullopt;
}

void Session::Impl::Execute(const PendingLine& line) {
  if (++commands > limits.max_commands) {
    CloseWith(421, "4.7.0", "Error: too many commands");
  } else if (line.too_long || WireLength(line) > LineLimit(line)) {
    Error(500, "5.5.2", "Error: line too long");
  } else if (line.text.find('\0') != std::string::npos) {
    Error(500, "5.5.2", "Error: NUL character in command");
  } else if (line.bare_lf || line.bare_cr) {
    // RFC 5321 §2.3.8: only CRLF ends a line; anything else is how commands
    // get smuggled past filters, so it is refused, not guessed at.
    Error(500, "5.5.2", "Error: syntax error (bare CR or LF)");
  } else {
    CommandLine cmd = SplitCommand(line.text);
    Dispatch(cmd.verb, cmd.args);
  }
}

// RFC 4954 §4: an AUTH command line (with its initial response) may be up
// to max_auth_line long; every other command line max_command_line (RFC 5321
// §4.5.3.1.4).
size_t Session::Impl::LineLimit(const PendingLine& line) const {
  if (WireLength(line) <= limits.max_command_line) return limits.max_command_line;
  return EqualsIgnoreCase(SplitCommand(line.text).verb, "AUTH") ? limits.max_auth_line
                                                                : limits.max_command_line;
}

void Session::Impl::Complete(Response response) {
  if (phase != Phase::kAwaiting || outgoing) {
    PORCUPINE_INVARIANT(false, "Complete() without an outstanding request");
    return;
  }
  phase = Phase::kCommand;
  Awaiting what = std::exchange(awaiting, Awaiting::kNothing);
  if (what == Awaiting::kRecipient) {
    auto* verdict = std::get_if<RecipientVerdict>(&response);
    PORCUPINE_INVARIANT(verdict, "CheckRecipient answered with a Status");
    CompleteRecipient(verdict ? *verdict : RecipientVerdict::kTempFail);
  } else if (what == Awaiting::kSasl) {
    auto* reply = std::get_if<protocol::SaslReply>(&response);
    PORCUPINE_INVARIANT(reply, "SaslStep answered with something else");
    CompleteSasl(reply);
  } else if (what == Awaiting::kLogin) {
    auto* result = std::get_if<LoginResult>(&response);
    PORCUPINE_INVARIANT(result, "Login answered with something else");
    CompleteLogin(result);
  } else {
    auto* status = std::get_if<Status>(&response);
    PORCUPINE_INVARIANT(status, "Deliver answered with a RecipientVerdict");
    CompleteDelivery(status ? *status : Status::Internal("mismatched response"));
  }
  if (shutting_down && phase != Phase::kClosed) {
    CloseWith(421, "4.3.2", "Service shutting down, closing transmission channel");
  }
}

// --- Session: the public face forwards to Impl.

Session::Session(const Limits& limits, SessionInfo info)
    : impl_(std::make_unique<Impl>(limits, std::move(info))) {}

Session::~Session() = default;

void Session::Start() { impl_->Reply(220, "", impl_->info.server_hostname + " ESMTP porcupine"); }

void Session::Feed(std::string_view bytes) {
  if (impl_->phase != Phase::kClosed) impl_->reader.Feed(bytes);
}

void Session::OnTlsStarted() {
  Impl& i = *impl_;
  PORCUPINE_INVARIANT(i.phase == Phase::kTls, "OnTlsStarted() without a kStartTls step");
  if (i.phase != Phase::kTls) return;
  i.transport.secure = true;
  // RFC 3207 §4.2: forget everything the client said before the handshake.
  i.greeting = Greeting::kNone;
  i.helo_name.clear();
  i.ResetTransaction();
  i.auth = AuthState{};
  i.reader.Clear();
  i.gate.Reset();
  i.phase = Phase::kCommand;
  if (i.shutting_down) {
    i.CloseWith(421, "4.3.2", "Service shutting down, closing transmission channel");
  }
}

void Session::OnTlsFailed() {
  PORCUPINE_INVARIANT(impl_->phase == Phase::kTls, "OnTlsFailed() without a kStartTls step");
  impl_->phase = Phase::kClosed;
}

const protocol::Transport& Session::transport() const { return impl_->transport; }

bool Session::submission() const { return impl_->info.submission; }

const std::string& Session::authenticated_user() const { return impl_->auth.user; }

void Session::OnEof() { impl_->eof = true; }

void Session::OnIdleTimeout() {
  // A slow backend is not the client's fault: a timeout while a request is
  // out is ignored (the driver should not arm the idle timer then anyway).
  Phase p = impl_->phase;
  if (p != Phase::kCommand && p != Phase::kData) return;
  impl_->CloseWith(421, "4.4.2", impl_->info.server_hostname + " Error: timeout exceeded");
}

void Session::OnShutdown() {
  impl_->shutting_down = true;
  Phase p = impl_->phase;
  // Complete() or OnTlsStarted() closes.
  if (p != Phase::kCommand && p != Phase::kData) return;
  // Mid-DATA the partial message is dropped: nothing was acknowledged yet.
  impl_->CloseWith(421, "4.3.2", "Service shutting down, closing transmission channel");
}

Step Session::Next() { return impl_->Next(); }

void Session::Complete(Response response) { impl_->Complete(std::move(response)); }

std::string Session::TakeOutput() { return std::exchange(impl_->out, std::string()); }

bool Session::HasOutput() const { return !impl_->out.empty(); }

const Session::Counters& Session::counters() const { return impl_->counters; }

}  // namespace porcupine::smtp
