// Helpers shared by the store's tests.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "store/message_id.h"
#include "store/records.pb.h"

namespace porcupine::store::testing {

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/porcupine-store-XXXXXX";
    const char* made = mkdtemp(tmpl);
    EXPECT_NE(made, nullptr);
    path_ = made ? made : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline NodeMeta TestNodeMeta(uint32_t node_id = 7) {
  NodeMeta m;
  m.set_version(1);
  m.set_node_id(node_id);
  m.set_name("node-" + std::to_string(node_id));
  m.set_buckets(1024);
  return m;
}

inline MessageMeta TestMessage(const MessageId& id, uint32_t folder = 1, uint64_t size = 0) {
  MessageMeta m;
  m.set_version(1);
  m.set_id(id.ToBytes());
  m.set_folder(folder);
  m.set_size(size);
  m.set_hlc(id.hlc);
  m.set_internal_date_ms(1700000000000);
  m.add_replicas(id.node);
  return m;
}

inline Profile TestProfile(const std::string& user, bool tombstone = false) {
  Profile p;
  p.set_version(1);
  p.set_user(user);
  p.set_password_hash("$argon2id$test");
  p.set_tombstone(tombstone);
  Folder* inbox = p.add_folders();
  inbox->set_id(1);
  inbox->set_name("INBOX");
  return p;
}

}  // namespace porcupine::store::testing
