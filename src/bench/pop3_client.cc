#include "bench/pop3_client.h"

#include <charconv>
#include <string>

namespace porcupine::bench {
namespace {

// Parses the unsigned number at the start of *s and the spaces after it.
bool TakeNumber(std::string_view* s, uint64_t* out) {
  auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), *out);
  if (ec != std::errc() || end == s->data()) return false;
  s->remove_prefix(end - s->data());
  while (!s->empty() && s->front() == ' ') s->remove_prefix(1);
  return true;
}

}  // namespace

Fault ErrFault(const Pop3Reply& reply, std::string_view command) {
  return {ErrorKind::kPop3Err, std::string(command) + ": -ERR " + reply.text};
}

asio::awaitable<MaybeFault> Pop3Client::Open(
    const std::vector<asio::ip::tcp::endpoint>& endpoints) {
  if (MaybeFault f = co_await conn_->Connect(endpoints)) co_return f;
  Pop3Reply greeting;
  if (MaybeFault f = co_await Command({}, false, &greeting)) co_return f;
  if (!greeting.ok) co_return Fault{ErrorKind::kConnect, "greeting: -ERR " + greeting.text};
  co_return std::nullopt;
}

asio::awaitable<MaybeFault> Pop3Client::Command(std::string_view line, bool multiline,
                                                Pop3Reply* out) {
  if (!line.empty()) {  // empty: just read (the greeting)
    line_.assign(line).append("\r\n");
    if (MaybeFault f = co_await conn_->Write(line_)) co_return f;
  }
  while (true) {
    Result<std::optional<Pop3Reply>> next = parser_.Next(multiline);
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

std::optional<uint64_t> ParseStat(std::string_view text) {
  uint64_t count = 0;
  uint64_t octets = 0;
  if (!TakeNumber(&text, &count) || !TakeNumber(&text, &octets)) return std::nullopt;
  return count;
}

std::optional<std::vector<MaildropEntry>> ParseList(std::string_view body) {
  std::vector<MaildropEntry> out;
  while (!body.empty()) {
    size_t eol = body.find("\r\n");
    std::string_view line = body.substr(0, eol);
    body.remove_prefix(eol == std::string_view::npos ? body.size() : eol + 2);
    MaildropEntry e;
    if (!TakeNumber(&line, &e.number) || !TakeNumber(&line, &e.size) || e.number == 0) {
      return std::nullopt;
    }
    out.push_back(e);
  }
  return out;
}

}  // namespace porcupine::bench
