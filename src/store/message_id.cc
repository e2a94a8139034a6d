#include "store/message_id.h"

namespace porcupine::store {
namespace {

void PutBigEndian(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetBigEndian(std::string_view b, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(b[pos + i]);
  return v;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string MessageId::ToBytes() const {
  std::string out;
  out.reserve(16);
  PutBigEndian(out, hlc, 8);
  PutBigEndian(out, node, 4);
  PutBigEndian(out, counter, 4);
  return out;
}

std::optional<MessageId> MessageId::FromBytes(std::string_view b) {
  if (b.size() != 16) return std::nullopt;
  MessageId id;
  id.hlc = GetBigEndian(b, 0, 8);
  id.node = static_cast<uint32_t>(GetBigEndian(b, 8, 4));
  id.counter = static_cast<uint32_t>(GetBigEndian(b, 12, 4));
  return id;
}

std::string MessageId::ToHex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  const std::string bytes = ToBytes();
  std::string out;
  out.reserve(32);
  for (char c : bytes) {
    const auto u = static_cast<uint8_t>(c);
    out.push_back(kDigits[u >> 4]);
    out.push_back(kDigits[u & 0x0f]);
  }
  return out;
}

std::optional<MessageId> MessageId::FromHex(std::string_view hex) {
  if (hex.size() != 32) return std::nullopt;
  std::string bytes;
  bytes.reserve(16);
  for (size_t i = 0; i < 32; i += 2) {
    const int hi = HexValue(hex[i]);
    const int lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    bytes.push_back(static_cast<char>((hi << 4) | lo));
  }
  return FromBytes(bytes);
}

}  // namespace porcupine::store
