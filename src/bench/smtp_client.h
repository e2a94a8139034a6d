// The bench's SMTP client: the wire side of a sender session. It owns the
// reply parser and turns replies into Faults; the dialogue (what to send
// when) lives in sender.cc.
//
// Thread-safety: none; one client per session, on its worker's thread.
#pragma once

#include <asio.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "bench/conn.h"
#include "bench/replies.h"

namespace porcupine::bench {

class SmtpClient {
 public:
  // REQUIRES: conn outlives the client.
  SmtpClient(Connection* conn, const ReplyLimits& limits) : conn_(conn), parser_(limits) {}

  // Connects, reads the 220 greeting and sends EHLO (HELO if EHLO is
  // refused). Faults: kConnect for a refused connection or a non-220
  // greeting, kTimeout, kDisconnect, kProtocol.
  asio::awaitable<MaybeFault> Open(const std::vector<asio::ip::tcp::endpoint>& endpoints,
                                   std::string_view helo_name);
  // STARTTLS, the handshake, and EHLO again (RFC 3207). Faults: kProtocol
  // when STARTTLS is not offered or the handshake fails, kSmtp4xx/5xx for a
  // refusal, kTimeout, kDisconnect. REQUIRES: Open succeeded with EHLO.
  asio::awaitable<MaybeFault> StartTls(asio::ssl::context& ctx, const std::string& name,
                                       std::string_view helo_name);
  // Whether the server advertised PIPELINING in its EHLO reply.
  bool pipelining() const { return pipelining_; }

  // Sends raw bytes (commands with CRLF, or DATA payload).
  asio::awaitable<MaybeFault> Send(std::string_view a, std::string_view b = {}) {
    return conn_->Write(a, b);
  }
  // Reads the next reply. Faults: kTimeout, kDisconnect, kProtocol.
  asio::awaitable<MaybeFault> Read(SmtpReply* out);
  // QUIT and its reply, ignoring failures; then closes the connection.
  asio::awaitable<void> Quit();

 private:
  Connection* conn_;
  SmtpReplyParser parser_;
  bool pipelining_ = false;
  bool starttls_ = false;  // advertised in the last EHLO reply
};

// The Fault a negative or unexpected reply to `command` counts as: 4xx →
// kSmtp4xx, 5xx → kSmtp5xx, anything else (e.g. 250 where 354 was due) →
// kProtocol.
Fault ReplyFault(const SmtpReply& reply, std::string_view command);

}  // namespace porcupine::bench
