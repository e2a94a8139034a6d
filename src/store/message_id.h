// 128-bit message ids (DESIGN.md §5): HLC timestamp (64) · node id (32) ·
// counter (32). The same on every replica; retrieval de-duplicates by it.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace porcupine::store {

struct MessageId {
  uint64_t hlc = 0;
  uint32_t node = 0;
  uint32_t counter = 0;

  auto operator<=>(const MessageId&) const = default;

  // 16 bytes, big-endian, so byte order equals numeric order.
  std::string ToBytes() const;
  // nullopt unless `b` is exactly 16 bytes.
  static std::optional<MessageId> FromBytes(std::string_view b);
  // 32 lower-case hex digits of ToBytes() (used as the POP3 UIDL).
  std::string ToHex() const;
  // nullopt unless `hex` is exactly 32 hex digits (either case).
  static std::optional<MessageId> FromHex(std::string_view hex);
};

}  // namespace porcupine::store
