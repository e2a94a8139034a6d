#include "outbound/client.h"

#include <cassert>

#include "core/invariant.h"
#include "outbound/client_impl.h"
#include "protocol/common/sasl.h"

namespace porcupine::outbound {

using Kind = Client::Step::Kind;

std::string_view StageName(Stage stage) {
  switch (stage) {
    case Stage::kConnect:
      return "connect";
    case Stage::kHelo:
      return "EHLO";
    case Stage::kStartTls:
      return "STARTTLS";
    case Stage::kAuth:
      return "AUTH";
    case Stage::kMail:
      return "MAIL FROM";
    case Stage::kRcpt:
      return "RCPT TO";
    case Stage::kData:
      return "DATA";
    case Stage::kDataEnd:
      return "end of data";
    case Stage::kRset:
      return "RSET";
    case Stage::kQuit:
      return "QUIT";
    case Stage::kLocal:
      return "local";
  }
  return "?";
}

Outcome FromReply(const Reply& reply, Stage stage) {
  Outcome o;
  o.kind = reply.Class() == 2   ? Outcome::Kind::kAccepted
           : reply.Class() == 4 ? Outcome::Kind::kTemporary
                                : Outcome::Kind::kPermanent;
  o.stage = stage;
  o.status = reply.StatusOrDefault();
  o.text = reply.Text();
  o.reply = reply;
  return o;
}

Outcome Decided(Outcome::Kind kind, Stage stage, EnhancedCode status, std::string text) {
  Outcome o;
  o.kind = kind;
  o.stage = stage;
  o.status = status;
  o.text = std::move(text);
  return o;
}

bool SafeAddress(std::string_view address) {
  for (char c : address) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '<' || c == '>') return false;
  }
  return true;
}

std::chrono::milliseconds Client::Impl::ReplyTimeout(Stage stage) const {
  const ClientTimeouts& t = options.timeouts;
  switch (stage) {
    case Stage::kConnect:
      return t.initial;
    case Stage::kMail:
      return t.mail;
    case Stage::kRcpt:
      return t.rcpt;
    case Stage::kData:
      return t.data_init;
    case Stage::kDataEnd:
      return t.data_term;
    default:
      return t.command;
  }
}

Client::Step Client::Impl::NextStep() {
  for (;;) {
    if (phase == Phase::kClosed) return {Kind::kClose, {}};
    if (!output.empty()) {
      return {Kind::kSend, body_in_output ? options.timeouts.data_block : options.timeouts.command};
    }
    if (expect.empty()) break;
    Result<std::optional<Reply>> next = parser.Next();
    if (!next.ok()) {
      if (phase == Phase::kQuitting) {
        phase = Phase::kClosed;
      } else {
        ProtocolError(expect.front().stage, next.status().message());
      }
      continue;
    }
    if (!next->has_value()) return {Kind::kReceive, ReplyTimeout(expect.front().stage)};
    Expect e = expect.front();
    expect.pop_front();
    Dispatch(e, **next);
  }
  switch (phase) {
    case Phase::kTls:
      return {Kind::kStartTls, options.timeouts.command};
    case Phase::kReady:
      return {Kind::kReady, {}};
    case Phase::kBody:
      return {Kind::kNeedBody, options.timeouts.data_block};
    default:
      // kActive and kQuitting always await a reply: reaching here is a bug.
      PORCUPINE_INVARIANT(false, "no reply awaited and nothing to do");
      phase = Phase::kClosed;
      return {Kind::kClose, {}};
  }
}

void Client::Impl::Dispatch(const Expect& e, const Reply& reply) {
  if (e.stage == Stage::kQuit) {
    phase = Phase::kClosed;  // whatever it says: we are done
    return;
  }
  // 421: the server is closing the channel (RFC 5321 §3.8); the replies to
  // anything else we pipelined will never come.
  if (reply.code == 421) {
    Fail(FromReply(reply, e.stage), /*quit=*/false);
    return;
  }
  switch (e.stage) {
    case Stage::kConnect:
      return OnGreeting(reply);
    case Stage::kHelo:
      return OnHello(reply);
    case Stage::kStartTls:
      return OnStartTls(reply);
    case Stage::kAuth:
      return OnAuth(reply);
    case Stage::kMail:
      return OnMail(reply);
    case Stage::kRcpt:
      return OnRcpt(e.index, reply);
    case Stage::kData:
      return OnData(reply);
    case Stage::kDataEnd:
      return OnDataEnd(reply);
    case Stage::kRset:
      return OnRset(reply);
    default:
      return ProtocolError(e.stage, "internal: unexpected reply stage");
  }
}

void Client::Impl::Send(std::string_view line, Expect e) {
  if (phase == Phase::kClosed) return;
  if (expect.empty() && e.stage != Stage::kQuit && parser.HasBuffered()) {
    ProtocolError(e.stage, "the server sent data before " + std::string(StageName(e.stage)));
    return;
  }
  output.append(line).append("\r\n");
  expect.push_back(e);
  phase = Phase::kActive;
}

void Client::Impl::SendHello(bool ehlo) {
  sent_ehlo = ehlo;
  Send((ehlo ? "EHLO " : "HELO ") + options.helo_name, {Stage::kHelo, 0});
}

void Client::Impl::OnGreeting(const Reply& r) {
  if (r.code == 220) return SendHello(true);
  if (r.Class() == 4 || r.Class() == 5) return Fail(FromReply(r, Stage::kConnect), true);
  ProtocolError(Stage::kConnect, "unexpected greeting " + r.Text());
}

void Client::Impl::OnHello(const Reply& r) {
  if (r.Class() == 2) {
    ext = sent_ehlo ? ParseExtensions(r) : Extensions();
    used_helo = !sent_ehlo;
    return AfterHello();
  }
  // A server that does not know EHLO answers 500/502 (RFC 5321 §4.1.4):
  // fall back to HELO, without extensions.
  if (r.Class() == 5 && sent_ehlo) return SendHello(false);
  if (r.Class() == 4 || r.Class() == 5) return Fail(FromReply(r, Stage::kHelo), true);
  ProtocolError(Stage::kHelo,
                "unexpected reply to " + std::string(sent_ehlo ? "EHLO: " : "HELO: ") + r.Text());
}

void Client::Impl::AfterHello() {
  bool want_tls = options.tls != TlsPolicy::kNone && !secure && !tls_tried;
  if (want_tls && ext.starttls) {
    tls_tried = true;
    return Send("STARTTLS", {Stage::kStartTls, 0});
  }
  if (options.tls == TlsPolicy::kRequired && !secure) {
    return Fail(Decided(Outcome::Kind::kTemporary, Stage::kStartTls, kEncryptionNeeded,
                        "TLS is required but the server does not offer STARTTLS"),
                true);
  }
  if (!options.auth_user.empty() && !authenticated) {
    if (!secure && !options.auth_without_tls) {
      return Fail(Decided(Outcome::Kind::kTemporary, Stage::kAuth, kEncryptionNeeded,
                          "AUTH needs TLS, and the connection is not encrypted"),
                  true);
    }
    if (!ext.HasAuth("PLAIN")) {
      return Fail(Decided(Outcome::Kind::kTemporary, Stage::kAuth, kAuthUnavailable,
                          "the server does not offer AUTH PLAIN"),
                  true);
    }
    std::string plain;
    plain.push_back('\0');
    plain.append(options.auth_user).push_back('\0');
    plain.append(options.auth_password);
    std::string line = "AUTH PLAIN " + protocol::EncodeBase64(plain);
    protocol::Wipe(&plain);
    Send(line, {Stage::kAuth, 0});
    protocol::Wipe(&line);
    return;
  }
  phase = Phase::kReady;
}

void Client::Impl::OnStartTls(const Reply& r) {
  if (r.code == 220) {
    // Anything the server sent after its 220 was sent in clear text and
    // must not be read as if it came over TLS (RFC 3207 §4.2; the client
    // side of CVE-2011-0411).
    parser.Clear();
    phase = Phase::kTls;
    return;
  }
  if (r.Class() != 4 && r.Class() != 5) {
    return ProtocolError(Stage::kStartTls, "unexpected reply to STARTTLS: " + r.Text());
  }
  if (options.tls == TlsPolicy::kRequired) {
    Outcome o = FromReply(r, Stage::kStartTls);
    o.kind = Outcome::Kind::kTemporary;  // our policy, not the message, is refused
    return Fail(std::move(o), true);
  }
  AfterHello();  // opportunistic: carry on in clear text
}

void Client::Impl::OnAuth(const Reply& r) {
  if (r.Class() == 2) {
    authenticated = true;
    return AfterHello();
  }
  if (r.Class() == 4 || r.Class() == 5) {
    // Wrong credentials are the operator's to fix; the mail waits for it.
    Outcome o = FromReply(r, Stage::kAuth);
    o.kind = Outcome::Kind::kTemporary;
    return Fail(std::move(o), true);
  }
  // 334: the server wants more than PLAIN's one message; we have nothing
  // more to say and the dialogue is out of step.
  ProtocolError(Stage::kAuth, "unexpected reply to AUTH PLAIN: " + r.Text());
}

void Client::Impl::Fail(Outcome why, bool quit) {
  if (!failure) failure = why;
  if (txn) {
    DecideRest(why);
    FinishTxn();
  }
  expect.clear();
  if (quit) {
    Send("QUIT", {Stage::kQuit, 0});
    phase = Phase::kQuitting;
  } else {
    phase = Phase::kClosed;
  }
}

void Client::Impl::ProtocolError(Stage stage, std::string detail) {
  Fail(Decided(Outcome::Kind::kTemporary, stage, kProtocolError, "protocol error: " + detail),
       false);
}

void Client::Impl::LostConnection(std::string why) {
  if (phase == Phase::kClosed) return;
  if (phase == Phase::kQuitting) {
    phase = Phase::kClosed;
    return;
  }
  Stage stage = Stage::kConnect;
  if (!expect.empty()) {
    stage = expect.front().stage;
    why += " waiting for the reply to " + std::string(StageName(stage));
  } else if (phase == Phase::kBody || body_in_output) {
    stage = Stage::kData;
    why += " sending the message body";
  }
  if (stage == Stage::kDataEnd && txn && !txn->lone_dot) {
    why += " (the message was sent: the server may have accepted it)";
  }
  output.clear();
  Fail(Decided(Outcome::Kind::kTemporary, stage, kBadConnection, why), false);
}

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  impl_->secure = impl_->options.implicit_tls;
}

Client::~Client() = default;

Client::Step Client::Next() { return impl_->NextStep(); }

std::string Client::TakeOutput() {
  impl_->body_in_output = false;
  std::string out;
  out.swap(impl_->output);
  return out;
}

bool Client::HasOutput() const { return !impl_->output.empty(); }

void Client::Feed(std::string_view bytes) {
  if (impl_->phase != Impl::Phase::kClosed) impl_->parser.Feed(bytes);
}

void Client::OnTimeout() { impl_->LostConnection("timeout"); }

void Client::OnConnectionLost(std::string_view why) {
  impl_->LostConnection("connection lost (" + std::string(why) + ")");
}

void Client::OnTlsStarted() {
  assert(impl_->phase == Impl::Phase::kTls);
  if (impl_->phase != Impl::Phase::kTls) return;
  // Forget what the server said in clear text and ask again (RFC 3207 §4.2).
  impl_->secure = true;
  impl_->ext = Extensions();
  impl_->parser.Clear();
  impl_->SendHello(true);
}

void Client::OnTlsFailed(std::string_view why) {
  assert(impl_->phase == Impl::Phase::kTls);
  if (impl_->phase != Impl::Phase::kTls) return;
  impl_->Fail(Decided(Outcome::Kind::kTemporary, Stage::kStartTls, kBadConnection,
                      "TLS handshake failed: " + std::string(why)),
              false);
}

void Client::StartMessage(Envelope envelope) {
  assert(impl_->phase == Impl::Phase::kReady && !impl_->result && !envelope.recipients.empty());
  if (impl_->phase != Impl::Phase::kReady) return;
  impl_->Start(std::move(envelope));
}

void Client::AddBody(std::string_view chunk) {
  assert(impl_->phase == Impl::Phase::kBody);
  if (impl_->phase != Impl::Phase::kBody) return;
  impl_->txn->encoder.Encode(chunk, &impl_->output);
  impl_->body_in_output = true;
}

void Client::EndBody() {
  assert(impl_->phase == Impl::Phase::kBody);
  if (impl_->phase != Impl::Phase::kBody) return;
  impl_->txn->encoder.Finish(&impl_->output);
  impl_->body_in_output = true;
  impl_->expect.push_back({Stage::kDataEnd, 0});
  impl_->phase = Impl::Phase::kActive;
}

void Client::Quit() {
  assert(impl_->phase == Impl::Phase::kReady);
  if (impl_->phase != Impl::Phase::kReady) return;
  impl_->Send("QUIT", {Stage::kQuit, 0});
  impl_->phase = Impl::Phase::kQuitting;
}

std::optional<MessageResult> Client::TakeResult() {
  std::optional<MessageResult> r;
  r.swap(impl_->result);
  return r;
}

const std::optional<Outcome>& Client::connection_failure() const { return impl_->failure; }
const Extensions& Client::extensions() const { return impl_->ext; }
bool Client::secure() const { return impl_->secure; }
bool Client::used_helo() const { return impl_->used_helo; }

}  // namespace porcupine::outbound
