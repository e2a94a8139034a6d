// The update log's persistent form (store/records.proto LogRecord,
// docs/storage.md) for replicator entries.
#pragma once

#include "replication/replicator.h"
#include "store/records.pb.h"

namespace porcupine::replication {

store::LogRecord ToRecord(const Entry& e);
Entry FromRecord(const store::LogRecord& r);

}  // namespace porcupine::replication
