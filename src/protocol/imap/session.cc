#include "protocol/imap/session.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "core/invariant.h"
#include "protocol/imap/session_impl.h"

namespace porcupine::imap {

Session::Impl::Impl(const Limits& l, SessionInfo i)
    : limits(l), info(std::move(i)), transport(info.transport), reader(l.parser) {
  reader.SetLiteralCheck(&Impl::CheckBeforeLiteral);
  reader.SetMemoryBudget(info.message_budget);
}

// ---- responses

void Session::Impl::Untagged(std::string_view text) {
  out += "* ";
  out += text;
  out += "\r\n";
}

void Session::Impl::Tagged(std::string_view status, std::string_view text) {
  // Expunges held back during an earlier FETCH/STORE/SEARCH go out before
  // the first tagged response that may carry them.
  if (cur && cur->expunge_allowed) FlushExpunges();
  out += cur ? cur->tag : std::string("*");
  out += ' ';
  out += status;
  out += ' ';
  out += text;
  out += "\r\n";
  cur.reset();
  cur_held.Reset();
}

void Session::Impl::Ok(std::string_view text) {
  ++counters.ok;
  Tagged("OK", text);
}

void Session::Impl::No(std::string_view text) {
  ++counters.no;
  Tagged("NO", text);
}

void Session::Impl::Bad(std::string_view text) {
  ++counters.bad;
  Tagged("BAD", text);
  CountError();
}

void Session::Impl::Fail(const Status& status) {
  switch (status.code()) {
    case Code::kNotFound:
      return No("[NONEXISTENT] Mailbox does not exist");
    case Code::kAlreadyExists:
      return No("[ALREADYEXISTS] Mailbox already exists");
    case Code::kPermissionDenied:
      return No("[NOPERM] Permission denied");
    case Code::kInvalidArgument:
    case Code::kFailedPrecondition:
      return No("[CANNOT] Operation not permitted");
    case Code::kResourceExhausted:
      return No("[LIMIT] Limit exceeded");
    case Code::kUnavailable:
    case Code::kAborted:
    case Code::kUnknownOutcome:
    case Code::kIoError:
      return No("[UNAVAILABLE] Temporary failure, try again later");
    default:
      return No("[SERVERBUG] Internal server error");
  }
}

// IMAP can say BYE at any time, so at the hard limit the command's own BAD
// goes out first and the BYE follows it.
void Session::Impl::CountError() {
  ++counters.errors;
  if (++errors >= limits.hard_error_limit && !closed) Bye("Too many errors");
}

void Session::Impl::Bye(std::string_view text) {
  Untagged("BYE " + std::string(text));
  closed = true;
  state = State::kLogout;
  mode = Mode::kCommands;
  cur.reset();
  cur_held.Reset();
  outgoing.reset();
  awaiting = false;
  continuation = nullptr;
}

bool Session::Impl::Tarpit() const {
  return errors > limits.soft_error_limit && limits.tarpit_delay.count() > 0;
}

// ---- the step loop

Step Session::Impl::Next() {
  for (;;) {
    if (closed) return Step::Close();
    if (awaiting) {
      if (outgoing) {
        Step s = Step::Do(std::move(*outgoing));
        outgoing.reset();
        return s;
      }
      PORCUPINE_INVARIANT(false, "Next() called while a request is outstanding");
      return Step::Close();
    }
    if (tls_running) {
      PORCUPINE_INVARIANT(false, "Next() called during the TLS handshake");
      return Step::Close();
    }
    if (tls_due) {
      tls_due = false;
      tls_running = true;
      return Step::StartTls();
    }
    if (shutting_down) {
      Bye("server shutting down");
      continue;
    }
    std::optional<Step> step = mode == Mode::kCommands ? StepCommands() : StepRaw();
    if (step) return *step;
  }
}

// Parses ahead, then runs the oldest queued event; tarpit pauses come
// before a command runs, so every reply to an abusive client costs time.
std::optional<Step> Session::Impl::StepCommands() {
  if (cur) {
    // A handler returned without answering and without a request: a bug.
    PORCUPINE_INVARIANT(false, "command neither answered nor waiting");
    No("[SERVERBUG] Internal server error");
  }
  // With the queue drained no command that switches the reader is pending.
  if (queue.empty()) parse_blocked = false;
  FillQueue();
  if (queue.empty()) {
    if (eof) {
      closed = true;
      return std::nullopt;
    }
    return Step::NeedInput();
  }
  Pending& head = queue.front();
  bool counts = head.kind == Pending::Kind::kCommand || head.kind == Pending::Kind::kError;
  if (counts && Tarpit() && !head.delayed) {
    head.delayed = true;
    return Step::Delay(limits.tarpit_delay);
  }
  Pending p = std::move(head);
  queue.pop_front();
  RunPending(std::move(p));
  return std::nullopt;
}

void Session::Impl::FillQueue() {
  const size_t ahead = std::max<size_t>(1, limits.max_pipelined);  // 0 would never read
  while (!parse_blocked && queue.size() < ahead) {
    Pending p;
    switch (reader.Next()) {
      case CommandReader::Event::kNeedInput:
      case CommandReader::Event::kRawLine:  // not in raw-line mode here
        return;
      case CommandReader::Event::kCommand: {
        p.command = reader.TakeCommand();
        p.held = reader.TakeReservation();
        const CommandSpec* spec = FindCommand(p.command.name);
        if (spec != nullptr && (spec->flags & kEndsPipeline) != 0) parse_blocked = true;
        break;
      }
      case CommandReader::Event::kContinue:
        p.kind = Pending::Kind::kContinue;
        break;
      case CommandReader::Event::kError:
        p.kind = Pending::Kind::kError;
        p.error = reader.error();
        p.tag = reader.error_tag();
        p.no_memory = reader.no_memory();
        break;
      case CommandReader::Event::kFatal:
        p.kind = Pending::Kind::kFatal;
        p.error = reader.error();
        parse_blocked = true;
        break;
    }
    queue.push_back(std::move(p));
  }
}

void Session::Impl::RunPending(Pending p) {
  switch (p.kind) {
    case Pending::Kind::kContinue:
      out += "+ OK\r\n";
      return;
    case Pending::Kind::kFatal:
      return Bye(p.error.empty() ? "Protocol error" : p.error);
    case Pending::Kind::kError:
    case Pending::Kind::kCommand:
      break;
  }
  if (++commands > limits.max_commands) return Bye("Too many commands");
  if (p.kind == Pending::Kind::kError) {
    cur = Current{p.tag.empty() ? "*" : p.tag, "", false, false};
    if (p.no_memory) {
      // The node is short of memory for messages, not the client wrong.
      ++counters.no_memory;
      return No("[LIMIT] Not enough server memory for the literal now, try again later");
    }
    return Bad(p.error.empty() ? "Syntax error" : p.error);
  }
  cur_held = std::move(p.held);
  Dispatch(p.command);
}

// IDLE and AUTHENTICATE read raw lines; the reader was put in raw-line mode
// when the command started and nothing after it was parsed.
std::optional<Step> Session::Impl::StepRaw() {
  if (mode == Mode::kIdle && poll_due) {
    poll_due = false;
    IdlePoll();
    return std::nullopt;
  }
  switch (reader.Next()) {
    case CommandReader::Event::kRawLine: {
      std::string line = reader.raw_line();
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
      if (mode == Mode::kSaslResponse) {
        SaslLine(line);
      } else {
        IdleLine(line);
      }
      return std::nullopt;
    }
    case CommandReader::Event::kNeedInput:
      if (!eof) return Step::NeedInput();
      closed = true;
      return std::nullopt;
    case CommandReader::Event::kFatal:
      Bye(reader.error().empty() ? "Protocol error" : reader.error());
      return std::nullopt;
    default:
      // An overlong line in raw mode: it ends the exchange like a bad one.
      mode = Mode::kCommands;
      reader.SetRawLineMode(false);
      Bad(reader.error().empty() ? "Line too long" : reader.error());
      return std::nullopt;
  }
}

void Session::Impl::Complete(Response response) {
  if (!awaiting || outgoing) {
    PORCUPINE_INVARIANT(false, "Complete() without an outstanding request");
    return;
  }
  awaiting = false;
  std::function<void(Response&)> k = std::exchange(continuation, nullptr);
  k(response);
  if (shutting_down && !closed) Bye("server shutting down");
}

// ---- Session: the public face forwards to Impl.

Session::Session(const Limits& limits, SessionInfo info)
    : impl_(std::make_unique<Impl>(limits, std::move(info))) {}

Session::~Session() = default;

void Session::Start() {
  impl_->Untagged("OK [CAPABILITY " + impl_->Capabilities() + "] " + impl_->info.server_hostname +
                  " ready");
}

void Session::Feed(std::string_view bytes) {
  if (!impl_->closed) impl_->reader.Feed(bytes);
}

void Session::OnEof() { impl_->eof = true; }

void Session::OnTlsStarted() {
  Impl& i = *impl_;
  PORCUPINE_INVARIANT(i.tls_running, "OnTlsStarted() without a kStartTls step");
  if (!i.tls_running) return;
  i.tls_running = false;
  i.transport.secure = true;
  i.DiscardInput();
  if (i.shutting_down) i.Bye("server shutting down");
}

void Session::OnTlsFailed() {
  PORCUPINE_INVARIANT(impl_->tls_running, "OnTlsFailed() without a kStartTls step");
  impl_->tls_running = false;
  impl_->closed = true;
}

const protocol::Transport& Session::transport() const { return impl_->transport; }

void Session::OnIdleTimeout() {
  // A slow backend is not the client's fault: a timeout while a request is
  // out is ignored (the driver should not arm the idle timer then anyway).
  if (impl_->closed || impl_->awaiting || impl_->tls_running) return;
  impl_->Bye("Autologout; idle for too long");
}

void Session::OnShutdown() {
  impl_->shutting_down = true;
  // Complete() or OnTlsStarted() says BYE.
  if (impl_->closed || impl_->awaiting || impl_->tls_running || impl_->tls_due) return;
  impl_->Bye("server shutting down");
}

std::optional<std::chrono::milliseconds> Session::PollInterval() const {
  const Impl& i = *impl_;
  if (i.mode != Mode::kIdle || !i.view || i.awaiting || i.closed) return std::nullopt;
  return i.limits.idle_poll;
}

void Session::OnPoll() {
  if (impl_->mode == Mode::kIdle) impl_->poll_due = true;
}

Step Session::Next() { return impl_->Next(); }

void Session::Complete(Response response) { impl_->Complete(std::move(response)); }

std::string Session::TakeOutput() { return std::exchange(impl_->out, std::string()); }

bool Session::HasOutput() const { return !impl_->out.empty(); }

const Session::Counters& Session::counters() const { return impl_->counters; }

}  // namespace porcupine::imap
