// Versions and checked decoding of the persistent records (records.proto,
// docs/storage.md). Internal to src/store.
#pragma once

#include <string_view>

#include "core/status.h"
#include "store/records.pb.h"

namespace porcupine::store {

// The `version` field of MessageMeta, Profile and NodeMeta written today.
inline constexpr uint32_t kRecordVersion = 1;
// NodeMeta.format_version: the layout of the whole database (keys, column
// families). Open refuses any other value.
inline constexpr uint32_t kFormatVersion = 1;

// LogRecord.kind values.
inline constexpr uint32_t kLogKindMessage = 1;
inline constexpr uint32_t kLogKindProfile = 2;

// Parses a stored value. Corruption when it does not parse or carries a
// record version other than kRecordVersion.
Result<MessageMeta> DecodeMessageMeta(std::string_view value);
Result<Profile> DecodeProfile(std::string_view value);
Result<NodeMeta> DecodeNodeMeta(std::string_view value);
Result<LogRecord> DecodeLogRecord(std::string_view value);

// Decodes the value stored at msg key `key` and checks that it agrees with
// the key (folder and message id); Corruption otherwise.
Result<MessageMeta> DecodeMessageAt(std::string_view key, std::string_view value);
// Decodes the value stored at profile key `key` and checks that its user is
// the key's; Corruption otherwise.
Result<Profile> DecodeProfileAt(std::string_view key, std::string_view value);

}  // namespace porcupine::store
