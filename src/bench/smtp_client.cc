#include "bench/smtp_client.h"

namespace porcupine::bench {

Fault ReplyFault(const SmtpReply& reply, std::string_view command) {
  std::string detail = std::string(command) + ": " + reply.Text();
  if (reply.code >= 400 && reply.code < 500) return {ErrorKind::kSmtp4xx, std::move(detail)};
  if (reply.code >= 500) return {ErrorKind::kSmtp5xx, std::move(detail)};
  return {ErrorKind::kProtocol, "unexpected reply to " + detail};
}

asio::awaitable<MaybeFault> SmtpClient::Read(SmtpReply* out) {
  while (true) {
    Result<std::optional<SmtpReply>> next = parser_.Next();
    if (!next.ok()) co_return Fault{ErrorKind::kProtocol, next.status().message()};
    if (next->has_value()) {
      *out = std::move(**next);
      co_return std::nullopt;
    }
    std::string_view got;
    if (MaybeFault f = co_await conn_->ReadSome(&got)) co_return f;
    parser_.Feed(got);
  }
}

asio::awaitable<MaybeFault> SmtpClient::Open(const std::vector<asio::ip::tcp::endpoint>& endpoints,
                                             std::string_view helo_name) {
  if (MaybeFault f = co_await conn_->Connect(endpoints)) co_return f;
  SmtpReply greeting;
  if (MaybeFault f = co_await Read(&greeting)) co_return f;
  if (greeting.code != 220) co_return Fault{ErrorKind::kConnect, "greeting: " + greeting.Text()};
  std::string ehlo = "EHLO " + std::string(helo_name) + "\r\n";
  if (MaybeFault f = co_await Send(ehlo)) co_return f;
  SmtpReply reply;
  if (MaybeFault f = co_await Read(&reply)) co_return f;
  if (reply.code == 250) {
    pipelining_ = reply.HasKeyword("PIPELINING");
    starttls_ = reply.HasKeyword("STARTTLS");
    co_return std::nullopt;
  }
  // An old server: fall back to HELO (RFC 5321 §3.2).
  std::string helo = "HELO " + std::string(helo_name) + "\r\n";
  if (MaybeFault f = co_await Send(helo)) co_return f;
  if (MaybeFault f = co_await Read(&reply)) co_return f;
  if (reply.code != 250) co_return ReplyFault(reply, "HELO");
  co_return std::nullopt;
}

asio::awaitable<MaybeFault> SmtpClient::StartTls(asio::ssl::context& ctx, const std::string& name,
                                                 std::string_view helo_name) {
  if (!starttls_) co_return Fault{ErrorKind::kProtocol, "STARTTLS not offered"};
  if (MaybeFault f = co_await Send("STARTTLS\r\n")) co_return f;
  SmtpReply reply;
  if (MaybeFault f = co_await Read(&reply)) co_return f;
  if (reply.code != 220) co_return ReplyFault(reply, "STARTTLS");
  if (MaybeFault f = co_await conn_->StartTls(ctx, name)) co_return f;
  std::string ehlo = "EHLO " + std::string(helo_name) + "\r\n";
  if (MaybeFault f = co_await Send(ehlo)) co_return f;
  if (MaybeFault f = co_await Read(&reply)) co_return f;
  if (reply.code != 250) co_return ReplyFault(reply, "EHLO after STARTTLS");
  pipelining_ = reply.HasKeyword("PIPELINING");
  co_return std::nullopt;
}

asio::awaitable<void> SmtpClient::Quit() {
  if (conn_->is_open() && !(co_await Send("QUIT\r\n"))) {
    SmtpReply ignored;
    co_await Read(&ignored);
  }
  conn_->Close();
}

}  // namespace porcupine::bench
