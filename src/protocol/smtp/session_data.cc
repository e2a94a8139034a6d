// DATA (RFC 5321 §4.1.1.4): read lines up to "." CRLF, undo dot-stuffing
// (§4.5.2), enforce the limits without buffering what will be refused, then
// hand the message to the backend. The buffer's memory is reserved against
// the node's budget (SessionInfo::data_budget) before it grows.
#include <algorithm>
#include <cassert>

#include "core/invariant.h"
#include "protocol/smtp/received.h"
#include "protocol/smtp/session_impl.h"

namespace porcupine::smtp {
namespace {

std::string QueueId(const SessionInfo& info, uint64_t n) {
  std::string id = info.session_id;
  if (!id.empty()) id += '.';
  id += std::to_string(n);
  return id;
}

// A message buffer's first size: small messages (most mail) grow from here
// in few steps.
constexpr size_t kMinDataBuffer = 4096;

}  // namespace

void Session::Impl::BeginData() {
  data = DataState{};
  data.id = QueueId(info, ++transactions);
  ReceivedFields f;
  f.helo = helo_name;
  f.peer_ip = info.peer_ip;
  f.hostname = info.server_hostname;
  f.protocol = ReceivedProtocol(greeting == Greeting::kEhlo, txn.smtputf8, transport.secure,
                                !auth.user.empty());
  f.authenticated = auth.user;
  f.id = data.id;
  if (txn.recipients.size() == 1) f.recipient = txn.recipients.front();
  std::string date = info.now_rfc5322 ? info.now_rfc5322() : std::string();
  f.date = date;
  data.held = MemoryReservation(info.data_budget);
  std::string headers = FormatReturnPath(txn.reverse_path) + FormatReceived(f);
  data.header_bytes = headers.size();
  if (HoldData(headers.size())) {
    data.message.append(headers);
  } else {
    data.no_memory = true;
    DropData();
  }
  reader.set_max_line(limits.max_data_line);
  phase = Phase::kData;
}

std::optional<Step> Session::Impl::PullData() {
  protocol::Line line;
  switch (reader.Next(&line)) {
    case protocol::LineReader::Kind::kNeedMore:
      if (!eof) return Step::NeedInput();
      phase = Phase::kClosed;  // the client vanished mid-message: store nothing
      DropData();
      return std::nullopt;
    case protocol::LineReader::Kind::kTooLong:
      data.line_too_long = true;
      DropData();
      return std::nullopt;
    case protocol::LineReader::Kind::kLine:
      break;
  }
  if (line.bare_lf) {
    // "\n.\n" vs "\r\n.\r\n" disagreements between servers are how SMTP
    // smuggling works; refusing to guess is the only safe answer.
    CloseWith(521, "5.5.2", "Error: bare LF received");
    return std::nullopt;
  }
  if (line.text == ".") {
    EndData();
    return std::nullopt;
  }
  NoteSpoiled(line);
  AppendDataLine(line.text);
  return std::nullopt;
}

// A bare CR or a NUL spoils the message: it is read to the end and refused
// there, and nothing more of it is buffered. NUL is refused rather than
// stripped: RFC 5322 text excludes it, 8BITMIME (RFC 6152) data must not hold
// it, IMAP cannot send it to a client (RFC 3501 §4.3), and stripping would
// silently change a message the sender believes delivered as sent.
void Session::Impl::NoteSpoiled(const protocol::Line& line) {
  const bool nul = line.text.find('\0') != std::string_view::npos;
  if ((line.bare_cr || nul) && !data.Discarding()) DropData();
  data.bare_cr |= line.bare_cr;
  data.nul |= nul;
}

void Session::Impl::AppendDataLine(std::string_view text) {
  if (!text.empty() && text.front() == '.') text.remove_prefix(1);
  data.payload_bytes += text.size() + 2;
  if (data.payload_bytes > limits.max_message_bytes && !data.too_big) {
    data.too_big = true;
    DropData();
  }
  if (data.Discarding()) return;
  if (!HoldData(data.message.size() + text.size() + 2)) {
    // Refused at the end (452): the node is short of memory, not the client wrong.
    data.no_memory = true;
    DropData();
    return;
  }
  data.message.append(text);
  data.message.append("\r\n");
}

// Makes the buffer's capacity at least `needed`, reserving it first. The
// capacity doubles (to at most the largest message, headers included); while
// the bytes move to the new buffer both buffers exist, so both are reserved
// until the old one is freed. The buffer is grown here rather than by
// append() so that what is reserved is exactly what is allocated.
bool Session::Impl::HoldData(size_t needed) {
  std::string& m = data.message;
  const size_t cap = m.capacity();
  if (needed <= cap) return true;
  const size_t most = data.header_bytes + limits.max_message_bytes;
  const size_t want = std::max(needed, std::min(std::max(2 * cap, kMinDataBuffer), most));
  if (!data.held.Resize(cap + want)) return false;
  std::string bigger;
  bigger.reserve(want);
  bigger.append(m);
  m.swap(bigger);
  std::string().swap(bigger);
  [[maybe_unused]] const bool shrunk = data.held.Resize(m.capacity());
  PORCUPINE_INVARIANT(shrunk, "the new buffer is larger than reserved");
  return true;
}

// Frees the buffer and gives its reservation back (the message is refused).
void Session::Impl::DropData() {
  std::string().swap(data.message);
  data.held.Reset();
}

void Session::Impl::EndData() {
  reader.set_max_line(CommandReaderLimit());
  phase = Phase::kCommand;
  DataState done = std::exchange(data, DataState{});
  if (done.line_too_long) {
    ResetTransaction();
    return Error(500, "5.5.2", "Error: line too long");
  }
  if (done.too_big) {
    ResetTransaction();
    return Reply(552, "5.3.4", "Error: message too big");
  }
  if (done.bare_cr) {
    ResetTransaction();
    return Error(550, "5.6.0", "Error: bare CR received");
  }
  if (done.nul) {
    ResetTransaction();
    return Error(550, "5.6.0", "Error: NUL character in message");
  }
  if (done.no_memory) {
    ResetTransaction();
    return Reply(452, "4.3.1", "Error: insufficient system storage");
  }
  Deliver d;
  d.reverse_path = std::move(txn.reverse_path);
  d.recipients = std::move(txn.recipients);
  d.message = std::move(done.message);
  d.smtputf8 = txn.smtputf8;
  d.eight_bit_mime = txn.eight_bit_mime;
  data.id = std::move(done.id);  // kept for the 250 reply
  delivering = std::move(done.held);
  ResetTransaction();
  Request(Awaiting::kDelivery, std::move(d));
}

void Session::Impl::CompleteDelivery(const Status& status) {
  delivering.Reset();  // the backend is done with the message
  std::string id = std::exchange(data.id, std::string());
  if (status.ok()) {
    Reply(250, "2.0.0", "Ok: queued as " + id);
  } else if (status.code() == Code::kResourceExhausted) {
    Reply(452, "4.3.1", "Error: insufficient system storage");
  } else {
    Reply(451, "4.3.0", "Error: temporary failure, try again later");
  }
}

}  // namespace porcupine::smtp
