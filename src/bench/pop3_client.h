// The bench's POP3 client: the wire side of a reader session. The dialogue
// lives in reader.cc.
//
// Thread-safety: none; one client per session, on its worker's thread.
#pragma once

#include <asio.hpp>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "bench/conn.h"
#include "bench/replies.h"

namespace porcupine::bench {

class Pop3Client {
 public:
  // REQUIRES: conn outlives the client.
  Pop3Client(Connection* conn, const ReplyLimits& limits) : conn_(conn), parser_(limits) {}

  // Connects and reads the +OK greeting. Faults: kConnect (refused, or a
  // -ERR greeting), kTimeout, kDisconnect, kProtocol.
  asio::awaitable<MaybeFault> Open(const std::vector<asio::ip::tcp::endpoint>& endpoints);
  // Sends `line` + CRLF and reads the reply (a -ERR is a reply, not a
  // fault). `multiline` as for Pop3ReplyParser::Next. Faults: kTimeout,
  // kDisconnect, kProtocol.
  asio::awaitable<MaybeFault> Command(std::string_view line, bool multiline, Pop3Reply* out);

 private:
  Connection* conn_;
  Pop3ReplyParser parser_;
  std::string line_;
};

// The fault of a -ERR to `command`: kPop3Err with the server's text.
Fault ErrFault(const Pop3Reply& reply, std::string_view command);

struct MaildropEntry {
  uint64_t number = 0;  // message number for RETR / DELE
  uint64_t size = 0;    // octets
};

// "+OK nn mm" text of STAT → message count; nullopt when malformed.
std::optional<uint64_t> ParseStat(std::string_view text);
// The body of a multi-line LIST → entries; nullopt when a line is malformed.
std::optional<std::vector<MaildropEntry>> ParseList(std::string_view body);

}  // namespace porcupine::bench
