#include "store/keys.h"

#include <cassert>

namespace porcupine::store::keys {
namespace {

void PutU16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void PutU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

uint32_t GetU32(std::string_view b) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(b[i]);
  return v;
}

}  // namespace

Status CheckUser(std::string_view user) {
  if (user.empty()) return Status::InvalidArgument("store: empty user name");
  if (user.size() > kMaxUserBytes) {
    return Status::InvalidArgument("store: user name longer than 255 bytes");
  }
  return Status::Ok();
}

std::string BucketPrefix(uint16_t bucket) {
  std::string out;
  PutU16(out, bucket);
  return out;
}

std::string UserPrefix(uint16_t bucket, std::string_view user) {
  assert(CheckUser(user).ok());
  std::string out;
  out.reserve(3 + user.size() + 20);
  PutU16(out, bucket);
  out.push_back(static_cast<char>(user.size()));
  out.append(user);
  return out;
}

std::string FolderPrefix(uint16_t bucket, std::string_view user, uint32_t folder) {
  std::string out = UserPrefix(bucket, user);
  PutU32(out, folder);
  return out;
}

std::string MessageKey(uint16_t bucket, std::string_view user, uint32_t folder,
                       const MessageId& id) {
  std::string out = FolderPrefix(bucket, user, folder);
  out += id.ToBytes();
  return out;
}

std::string BodyKey(const MessageId& id) { return id.ToBytes(); }

std::optional<std::string> PrefixSuccessor(std::string_view prefix) {
  std::string out(prefix);
  while (!out.empty() && static_cast<uint8_t>(out.back()) == 0xff) out.pop_back();
  if (out.empty()) return std::nullopt;
  out.back() = static_cast<char>(static_cast<uint8_t>(out.back()) + 1);
  return out;
}

std::optional<UserKey> ParseUserKey(std::string_view key) {
  if (key.size() < 3) return std::nullopt;
  const size_t len = static_cast<uint8_t>(key[2]);
  if (len == 0 || key.size() < 3 + len) return std::nullopt;
  UserKey out;
  out.bucket =
      static_cast<uint16_t>((static_cast<uint8_t>(key[0]) << 8) | static_cast<uint8_t>(key[1]));
  out.user = key.substr(3, len);
  out.rest = key.substr(3 + len);
  return out;
}

std::optional<MessageKeyParts> ParseMessageKey(std::string_view key) {
  std::optional<UserKey> uk = ParseUserKey(key);
  if (!uk || uk->rest.size() != 4 + 16) return std::nullopt;
  std::optional<MessageId> id = MessageId::FromBytes(uk->rest.substr(4));
  if (!id) return std::nullopt;
  return MessageKeyParts{uk->bucket, uk->user, GetU32(uk->rest), *id};
}

std::string LogKey(uint8_t kind, uint16_t bucket, std::string_view user, uint32_t folder,
                   const MessageId* id) {
  std::string k(1, static_cast<char>(kind));
  k += UserPrefix(bucket, user);
  if (id) {
    for (int shift = 24; shift >= 0; shift -= 8) k.push_back(static_cast<char>(folder >> shift));
    k += id->ToBytes();
  }
  return k;
}

}  // namespace porcupine::store::keys
