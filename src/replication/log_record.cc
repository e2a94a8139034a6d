#include "replication/log_record.h"

namespace porcupine::replication {

store::LogRecord ToRecord(const Entry& e) {
  store::LogRecord r;
  r.set_version(1);
  r.set_kind(static_cast<uint32_t>(e.object.kind));
  r.set_user(e.object.user);
  r.set_folder(e.object.folder);
  r.set_id(e.object.id);
  r.set_hlc(e.hlc);
  for (NodeId n : e.remaining) r.add_remaining(n);
  r.set_takeover(e.takeover);
  r.set_created_ms(e.created_ms);
  r.set_bytes(e.bytes);
  return r;
}

Entry FromRecord(const store::LogRecord& r) {
  Entry e;
  e.object.kind = r.kind() == 2 ? ObjectRef::Kind::kProfile : ObjectRef::Kind::kMessage;
  e.object.user = r.user();
  e.object.folder = r.folder();
  e.object.id = r.id();
  e.hlc = r.hlc();
  e.remaining.insert(r.remaining().begin(), r.remaining().end());
  e.takeover = r.takeover();
  e.created_ms = r.created_ms();
  e.bytes = r.bytes();
  return e;
}

}  // namespace porcupine::replication
