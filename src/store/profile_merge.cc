#include "store/profile_merge.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "store/store.h"

namespace porcupine::store {

namespace {

// Whether `a` is the newer copy; equal stamps are ordered by content, so
// that every node picks the same one.
bool NewerCopy(const Profile& a, const Profile& b) {
  if (a.hlc() != b.hlc()) return a.hlc() > b.hlc();
  return a.SerializeAsString() >= b.SerializeAsString();
}

bool Deleted(const std::vector<uint32_t>& deleted, uint32_t id) {
  return std::binary_search(deleted.begin(), deleted.end(), id);
}

}  // namespace

Profile MergeProfiles(const Profile& a, const Profile& b) {
  const bool a_newer = NewerCopy(a, b);
  const Profile& newer = a_newer ? a : b;
  const Profile& older = a_newer ? b : a;
  if (newer.user() != older.user() || newer.tombstone() || older.tombstone()) return newer;

  std::set<uint32_t> all_deleted(newer.deleted_folders().begin(), newer.deleted_folders().end());
  all_deleted.insert(older.deleted_folders().begin(), older.deleted_folders().end());
  all_deleted.erase(kInboxFolder);
  std::vector<uint32_t> deleted(all_deleted.begin(), all_deleted.end());
  if (deleted.size() > kMaxDeletedFolders) {
    deleted.erase(deleted.begin(), deleted.end() - kMaxDeletedFolders);
  }

  std::map<uint32_t, const Folder*> old_by_id;
  for (const Folder& f : older.folders()) old_by_id[f.id()] = &f;
  Profile m = newer;
  m.clear_folders();
  m.clear_deleted_folders();
  for (uint32_t id : deleted) m.add_deleted_folders(id);
  // The newer copy's folders in its order, then those only the older one
  // has, by id (so a copy merged with its own ancestor comes out unchanged).
  for (const Folder& f : newer.folders()) {
    if (f.id() != kInboxFolder && Deleted(deleted, f.id())) continue;
    Folder* x = m.add_folders();
    *x = f;
    auto it = old_by_id.find(f.id());
    if (it != old_by_id.end()) {
      x->set_uid_reserved(std::max(x->uid_reserved(), it->second->uid_reserved()));
      old_by_id.erase(it);
    }
  }
  for (const auto& [id, f] : old_by_id) {
    if (id != kInboxFolder && Deleted(deleted, id)) continue;
    *m.add_folders() = *f;
  }
  // One name, one folder: the lower id keeps it.
  std::map<std::string, uint32_t> owner;
  for (const Folder& f : m.folders()) {
    auto [it, fresh] = owner.emplace(f.name(), f.id());
    if (!fresh) it->second = std::min(it->second, f.id());
  }
  for (Folder& f : *m.mutable_folders()) {
    if (owner[f.name()] == f.id()) continue;
    std::string name = f.name();
    while (owner.count(name)) name += "-" + std::to_string(f.id());
    owner.emplace(name, f.id());
    f.set_name(name);
  }
  m.set_next_folder_id(std::max(newer.next_folder_id(), older.next_folder_id()));
  m.set_last_uidvalidity(std::max(newer.last_uidvalidity(), older.last_uidvalidity()));
  if (m.SerializeAsString() != newer.SerializeAsString()) m.set_hlc(newer.hlc() + 1);
  return m;
}

uint32_t NewFolderId(const Profile& p, uint64_t seed) {
  // Ids below 2^20 are left to the folders numbered in order by earlier
  // versions; 2^31 - 2^20 choices make a collision between two sides of a
  // partition negligible.
  constexpr uint32_t kLow = 1u << 20, kSpan = (1u << 31) - kLow;
  std::set<uint32_t> taken(p.deleted_folders().begin(), p.deleted_folders().end());
  for (const Folder& f : p.folders()) taken.insert(f.id());
  uint32_t id = kLow + static_cast<uint32_t>(seed % kSpan);
  while (taken.count(id)) id = kLow + (id - kLow + 1) % kSpan;
  return id;
}

void MarkFolderDeleted(Profile& p, uint32_t id) {
  std::set<uint32_t> deleted(p.deleted_folders().begin(), p.deleted_folders().end());
  deleted.insert(id);
  while (deleted.size() > kMaxDeletedFolders) deleted.erase(deleted.begin());
  p.clear_deleted_folders();
  for (uint32_t d : deleted) p.add_deleted_folders(d);
}

}  // namespace porcupine::store
