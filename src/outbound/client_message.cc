// The mail transaction of outbound::Client: MAIL, RCPT, DATA, the body and
// the final reply, pipelined or not (client.h).
#include <cassert>

#include "outbound/client_impl.h"

namespace porcupine::outbound {

void Client::Impl::Start(Envelope envelope) {
  txn.emplace();
  txn->envelope = std::move(envelope);
  size_t n = txn->envelope.recipients.size();
  txn->outcomes.resize(n);
  if (DecideLocally()) return FinishTxn();
  if (need_rset) return Send("RSET", {Stage::kRset, 0});
  SendMailGroup();
}

// The refusals that need no server: they would fail anyway, and sending
// would only waste a round trip or, for a bad address, inject a command.
bool Client::Impl::DecideLocally() {
  const Envelope& env = txn->envelope;
  using K = Outcome::Kind;
  std::optional<Outcome> all;
  if (!SafeAddress(env.reverse_path)) {
    all = Decided(K::kPermanent, Stage::kLocal, kBadSenderSyntax,
                  "550 5.1.7 the sender address has bytes that cannot be sent");
  } else if (ext.size && ext.max_size > 0 && env.size > ext.max_size) {
    all = Decided(K::kPermanent, Stage::kLocal, kTooBig,
                  "552 5.3.4 message size " + std::to_string(env.size) +
                      " exceeds the server's fixed maximum " + std::to_string(ext.max_size));
  } else if (env.eight_bit && !ext.eight_bit_mime) {
    all = Decided(K::kPermanent, Stage::kLocal, kConversionNeeded,
                  "554 5.6.3 8-bit message and the server does not support 8BITMIME");
  } else if (env.smtputf8 && !ext.smtputf8) {
    all = Decided(K::kPermanent, Stage::kLocal, kUtf8Needed,
                  "553 5.6.7 the message needs SMTPUTF8 and the server does not support it");
  }
  if (all) {
    DecideRest(*all);
    return true;
  }
  for (size_t i = 0; i < env.recipients.size(); ++i) {
    if (SafeAddress(env.recipients[i]) && !env.recipients[i].empty()) {
      txn->to_send.push_back(i);
    } else {
      txn->outcomes[i] = Decided(K::kPermanent, Stage::kLocal, kBadRecipientSyntax,
                                 "553 5.1.3 the recipient address has bytes that cannot be sent");
    }
  }
  return txn->to_send.empty();
}

std::string Client::Impl::MailCommand() const {
  const Envelope& env = txn->envelope;
  std::string line = "MAIL FROM:<" + env.reverse_path + ">";
  if (ext.size) line += " SIZE=" + std::to_string(env.size);
  if (env.eight_bit) line += " BODY=8BITMIME";  // DecideLocally made sure it is offered
  if (env.smtputf8) line += " SMTPUTF8";
  return line;
}

void Client::Impl::SendMailGroup() {
  txn->pipelined = options.pipelining && ext.pipelining;
  Send(MailCommand(), {Stage::kMail, 0});
  if (phase == Phase::kClosed || !txn->pipelined) return;
  // RFC 2920 §3.1: MAIL and RCPT may be grouped; DATA ends the group.
  for (size_t i : txn->to_send) {
    Send("RCPT TO:<" + txn->envelope.recipients[i] + ">", {Stage::kRcpt, i});
  }
  Send("DATA", {Stage::kData, 0});
}

void Client::Impl::SendNextRcpt() {
  if (txn->next_rcpt < txn->to_send.size()) {
    size_t i = txn->to_send[txn->next_rcpt++];
    return Send("RCPT TO:<" + txn->envelope.recipients[i] + ">", {Stage::kRcpt, i});
  }
  if (txn->accepted > 0) return Send("DATA", {Stage::kData, 0});
  need_rset = true;  // nobody to deliver to: no DATA (RFC 5321 §3.3)
  FinishTxn();
}

void Client::Impl::OnMail(const Reply& r) {
  if (r.Class() == 2) {
    if (!txn->pipelined) SendNextRcpt();
    return;
  }
  if (r.Class() != 4 && r.Class() != 5) {
    return ProtocolError(Stage::kMail, "unexpected reply to MAIL: " + r.Text());
  }
  txn->mail_failure = FromReply(r, Stage::kMail);
  need_rset = true;
  if (txn->pipelined) return;  // the RCPT and DATA replies are still to come
  DecideRest(*txn->mail_failure);
  FinishTxn();
}

void Client::Impl::OnRcpt(size_t index, const Reply& r) {
  // After a refused MAIL the replies to the pipelined RCPTs (503 most
  // likely) say nothing about the recipients: MAIL's reply decides them.
  if (!txn->mail_failure) {
    if (r.Class() == 2) {
      ++txn->accepted;
    } else if (r.Class() == 4 || r.Class() == 5) {
      txn->outcomes[index] = FromReply(r, Stage::kRcpt);
    } else {
      return ProtocolError(Stage::kRcpt, "unexpected reply to RCPT: " + r.Text());
    }
  }
  if (!txn->pipelined) SendNextRcpt();
}

void Client::Impl::OnData(const Reply& r) {
  if (r.code == 354) {
    if (txn->mail_failure || txn->accepted == 0) {
      // RFC 2920 §3.1: DATA went out in the group with nobody accepted, and
      // the server still wants the message: end it at once with a lone ".".
      txn->lone_dot = true;
      output.append(".\r\n");
      expect.push_back({Stage::kDataEnd, 0});
      return;
    }
    phase = Phase::kBody;
    return;
  }
  if (r.Class() != 4 && r.Class() != 5) {
    return ProtocolError(Stage::kData, "unexpected reply to DATA: " + r.Text());
  }
  need_rset = true;
  DecideRest(txn->mail_failure ? *txn->mail_failure : FromReply(r, Stage::kData));
  FinishTxn();
}

void Client::Impl::OnDataEnd(const Reply& r) {
  if (txn->lone_dot) {
    // Whatever the server says about an empty message for nobody, the
    // recipients were decided by MAIL and RCPT. The transaction is over.
    need_rset = false;
    if (txn->mail_failure) DecideRest(*txn->mail_failure);
    return FinishTxn();
  }
  if (r.Class() != 2 && r.Class() != 4 && r.Class() != 5) {
    return ProtocolError(Stage::kDataEnd, "unexpected reply to end of data: " + r.Text());
  }
  need_rset = false;
  DecideRest(FromReply(r, Stage::kDataEnd));
  FinishTxn();
}

void Client::Impl::OnRset(const Reply& r) {
  if (r.Class() == 2) {
    need_rset = false;
    return SendMailGroup();
  }
  if (r.Class() == 4 || r.Class() == 5) {
    Outcome o = FromReply(r, Stage::kRset);
    o.kind = Outcome::Kind::kTemporary;  // the server's trouble, not the message's
    return Fail(std::move(o), true);
  }
  ProtocolError(Stage::kRset, "unexpected reply to RSET: " + r.Text());
}

void Client::Impl::DecideRest(const Outcome& o) {
  for (std::optional<Outcome>& slot : txn->outcomes) {
    if (!slot) slot = o;
  }
}

void Client::Impl::FinishTxn() {
  assert(txn);
  MessageResult r;
  r.recipients.reserve(txn->outcomes.size());
  for (size_t i = 0; i < txn->outcomes.size(); ++i) {
    assert(txn->outcomes[i]);
    r.recipients.push_back({txn->envelope.recipients[i], std::move(*txn->outcomes[i])});
  }
  result = std::move(r);
  txn.reset();
  expect.clear();
  phase = Phase::kReady;
}

}  // namespace porcupine::outbound
