#include "bench/message.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>

namespace porcupine::bench {
namespace {

constexpr size_t kPoolLines = 4096;

constexpr std::array<std::string_view, 40> kWords = {
    "the",       "mail",     "cluster", "node",  "message", "user",     "replica", "quorum",
    "porcupine", "delivery", "mailbox", "load",  "balance", "fragment", "store",   "commit",
    "a",         "of",       "to",      "and",   "in",      "is",       "for",     "with",
    "server",    "protocol", "retry",   "queue", "latency", "through",  "every",   "one",
    "test",      "data",     "from",    "over",  "after",   "before",   "while",   "system"};

// One pool line: words up to a random width in [20, kMaxLineChars]. About one
// line in 32 starts with '.' and one in 16 is blank, so dot-stuffing and
// paragraph breaks are exercised by every message of a few hundred bytes.
std::string MakeLine(Rng& rng) {
  std::uniform_int_distribution<int> kind(0, 31);
  int k = kind(rng);
  if (k < 2) return "\r\n";
  std::string line = k == 2 ? "." : "";
  size_t width = std::uniform_int_distribution<size_t>(20, kMaxLineChars)(rng);
  std::uniform_int_distribution<size_t> pick(0, kWords.size() - 1);
  while (true) {
    std::string_view w = kWords[pick(rng)];
    size_t need = w.size() + (line.empty() || line == "." ? 0 : 1);
    if (line.size() + need > width) break;
    if (need > w.size()) line += ' ';
    line += w;
  }
  return line + "\r\n";
}

// Appends "To: a, b, ..." folded so no line exceeds kMaxLineChars.
void AppendTo(const std::vector<std::string>& to, std::string* out) {
  size_t line_len = 3;  // "To:"
  out->append("To:");
  for (size_t i = 0; i < to.size(); ++i) {
    std::string item = to[i] + (i + 1 < to.size() ? "," : "");
    if (line_len + 1 + item.size() > kMaxLineChars && line_len > 3) {
      out->append("\r\n");
      line_len = 0;
    }
    out->append(" ").append(item);
    line_len += 1 + item.size();
  }
  out->append("\r\n");
}

std::string Headers(const MessageSpec& spec) {
  std::string h;
  h.reserve(256);
  h.append("From: ").append(spec.from).append("\r\n");
  AppendTo(spec.to, &h);
  h.append("Subject: porcupine bench ").append(spec.message_id.substr(0, 40)).append("\r\n");
  h.append("Date: ").append(FormatDate(spec.date)).append("\r\n");
  h.append("Message-ID: <").append(spec.message_id).append(">\r\n");
  h.append("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n");
  return h;
}

void AppendStuffed(std::string_view line, std::string* out) {
  if (!line.empty() && line[0] == '.') out->push_back('.');
  out->append(line);
}

// Appends exactly `left` bytes (0 or >= 3) of "xxx\r\n" lines, none longer
// than kMaxLineChars and none starting with '.'.
void AppendFill(uint64_t left, std::string* out) {
  while (left > 0) {
    uint64_t n = left <= kMaxLineChars + 2 ? left : std::min<uint64_t>(kMaxLineChars + 2, left - 3);
    out->append(n - 2, 'x').append("\r\n");
    left -= n;
  }
}

}  // namespace

MessageFactory::MessageFactory(uint64_t pool_seed) {
  Rng rng(pool_seed);
  lines_.reserve(kPoolLines);
  for (size_t i = 0; i < kPoolLines; ++i) lines_.push_back(MakeLine(rng));
}

uint64_t MessageFactory::ActualSize(const MessageSpec& spec) const {
  // The smallest body is "x\r\n".
  return std::max<uint64_t>(spec.size, Headers(spec).size() + 3);
}

uint64_t MessageFactory::AppendData(const MessageSpec& spec, Rng& rng, std::string* out) const {
  std::string headers = Headers(spec);
  uint64_t target = std::max<uint64_t>(spec.size, headers.size() + 3);
  out->reserve(out->size() + target + target / 32 + 8);
  out->append(headers);  // no header line starts with '.'
  uint64_t left = target - headers.size();
  size_t i = std::uniform_int_distribution<size_t>(0, lines_.size() - 1)(rng);
  while (left > 0) {
    const std::string& line = lines_[i];
    i = (i + 1) % lines_.size();
    uint64_t rest = left - std::min<uint64_t>(left, line.size());
    if (line.size() > left || rest == 1 || rest == 2) break;  // a line cannot be 1-2 bytes
    AppendStuffed(line, out);
    left = rest;
  }
  AppendFill(left, out);
  out->append(".\r\n");
  return target;
}

std::string FormatDate(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

std::string MakeMessageId(std::string_view nonce, uint32_t worker, uint32_t session, uint64_t seq,
                          std::string_view domain) {
  std::string id;
  id.reserve(nonce.size() + domain.size() + 32);
  id.append(nonce).append(".").append(std::to_string(worker)).append(".");
  id.append(std::to_string(session)).append(".").append(std::to_string(seq));
  id.append("@").append(domain);
  return id;
}

std::string MakeRunNonce() {
  std::random_device rd;
  uint64_t now = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch() /
                                       std::chrono::microseconds(1));
  uint64_t mix = (uint64_t{rd()} << 32 | rd()) ^ static_cast<uint64_t>(::getpid());
  char buf[40];
  std::snprintf(buf, sizeof buf, "%llx.%llx", static_cast<unsigned long long>(now),
                static_cast<unsigned long long>(mix & 0xffffffffffff));
  return buf;
}

std::string DotStuff(std::string_view message) {
  std::string out;
  out.reserve(message.size() + message.size() / 32 + 8);
  size_t pos = 0;
  while (pos < message.size()) {
    size_t lf = message.find('\n', pos);
    size_t end = lf == std::string_view::npos ? message.size() : lf;
    std::string_view line = message.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    AppendStuffed(line, &out);
    out.append("\r\n");
    pos = end + 1;
  }
  out.append(".\r\n");
  return out;
}

}  // namespace porcupine::bench
