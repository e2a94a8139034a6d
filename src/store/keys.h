// Key layout of the store's column families (docs/storage.md). Internal to
// src/store.
//
// Every key of user data starts with the bucket (2 bytes, big-endian) and the
// user name prefixed by its length (1 byte), so one bucket is one contiguous
// key range and one user is one contiguous range inside it. Fixed-width
// integers are big-endian so byte order equals numeric order.
//
//   msg:     bucket(2) · len(1) · user · folder(4) · message-id(16)
//   profile: bucket(2) · len(1) · user
//   body:    message-id(16)
//   meta:    "node"
//
// Key order among users is therefore (bucket, user length, user bytes).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "store/message_id.h"

namespace porcupine::store::keys {

// The column families, in the order Store opens them.
enum class Cf : uint8_t { kDefault, kMsg, kBody, kProfile, kReplog, kMeta };
inline constexpr size_t kCfCount = 6;
inline constexpr std::array<std::string_view, kCfCount> kCfNames = {"default", "msg",    "body",
                                                                    "profile", "replog", "meta"};

inline constexpr size_t kMaxUserBytes = 255;
inline constexpr std::string_view kNodeMetaKey = "node";

// OK when `user` can be encoded in a key: 1 to kMaxUserBytes bytes.
// InvalidArgument otherwise.
Status CheckUser(std::string_view user);

// bucket(2). The first key of the bucket's range.
std::string BucketPrefix(uint16_t bucket);
// bucket · len · user: the profile key, and the prefix of every msg key of
// the user. REQUIRES: CheckUser(user).ok().
std::string UserPrefix(uint16_t bucket, std::string_view user);
// UserPrefix · folder: the prefix of every msg key of one folder.
std::string FolderPrefix(uint16_t bucket, std::string_view user, uint32_t folder);
std::string MessageKey(uint16_t bucket, std::string_view user, uint32_t folder,
                       const MessageId& id);
std::string BodyKey(const MessageId& id);
// The replog key of an object: kind(1) · UserPrefix · [folder(4) · id(16)]
// (messages only). REQUIRES: CheckUser(user).ok().
std::string LogKey(uint8_t kind, uint16_t bucket, std::string_view user, uint32_t folder,
                   const MessageId* id);

// The smallest key greater than every key that starts with `prefix`;
// nullopt when there is none (prefix empty or all 0xff).
std::optional<std::string> PrefixSuccessor(std::string_view prefix);

// A key that starts with bucket · len · user. `rest` is what follows the user.
// Views point into the parsed key.
struct UserKey {
  uint16_t bucket = 0;
  std::string_view user;
  std::string_view rest;
};
// nullopt when the key is too short for its length byte or the user is empty.
std::optional<UserKey> ParseUserKey(std::string_view key);

struct MessageKeyParts {
  uint16_t bucket = 0;
  std::string_view user;
  uint32_t folder = 0;
  MessageId id;
};
// nullopt unless the key is a complete msg key.
std::optional<MessageKeyParts> ParseMessageKey(std::string_view key);

}  // namespace porcupine::store::keys
