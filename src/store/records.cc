#include "store/records.h"

#include <string>

#include "store/keys.h"

namespace porcupine::store {
namespace {

template <typename Record>
Result<Record> Decode(std::string_view value, const char* what) {
  Record r;
  if (!r.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return Status::Corruption(std::string("store: unparsable ") + what + " record");
  }
  if (r.version() != kRecordVersion) {
    return Status::Corruption(std::string("store: ") + what + " record has unknown version " +
                              std::to_string(r.version()));
  }
  return r;
}

}  // namespace

Result<MessageMeta> DecodeMessageMeta(std::string_view value) {
  return Decode<MessageMeta>(value, "message");
}

Result<Profile> DecodeProfile(std::string_view value) { return Decode<Profile>(value, "profile"); }

Result<NodeMeta> DecodeNodeMeta(std::string_view value) {
  return Decode<NodeMeta>(value, "node meta");
}

Result<LogRecord> DecodeLogRecord(std::string_view value) {
  return Decode<LogRecord>(value, "replication log");
}

Result<MessageMeta> DecodeMessageAt(std::string_view key, std::string_view value) {
  std::optional<keys::MessageKeyParts> k = keys::ParseMessageKey(key);
  if (!k) return Status::Corruption("store: malformed msg key");
  Result<MessageMeta> meta = DecodeMessageMeta(value);
  if (!meta.ok()) return meta;
  if (meta->folder() != k->folder || meta->id() != k->id.ToBytes()) {
    return Status::Corruption("store: message record disagrees with its key " + k->id.ToHex());
  }
  return meta;
}

Result<Profile> DecodeProfileAt(std::string_view key, std::string_view value) {
  std::optional<keys::UserKey> k = keys::ParseUserKey(key);
  if (!k || !k->rest.empty()) return Status::Corruption("store: malformed profile key");
  Result<Profile> profile = DecodeProfile(value);
  if (!profile.ok()) return profile;
  if (profile->user() != k->user) {
    return Status::Corruption("store: profile record disagrees with its key");
  }
  return profile;
}

}  // namespace porcupine::store
