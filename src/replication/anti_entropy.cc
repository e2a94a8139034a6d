#include "replication/anti_entropy.h"

#include <algorithm>
#include <map>
#include <string>

#include "core/hash.h"

namespace porcupine::replication {

uint64_t ItemHash(const Item& item) {
  std::string key;
  key.reserve(item.object.user.size() + item.object.id.size() + 16);
  key.push_back(static_cast<char>(item.object.kind));
  key += item.object.user;
  key.push_back('\0');
  for (int s = 0; s < 32; s += 8) key.push_back(static_cast<char>(item.object.folder >> s));
  key += item.object.id;
  for (int s = 0; s < 64; s += 8) key.push_back(static_cast<char>(item.hlc >> s));
  return Hash64(key);
}

std::vector<uint32_t> Differing(const std::vector<uint64_t>& mine,
                                const std::vector<uint64_t>& theirs) {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < mine.size() && i < theirs.size(); ++i) {
    if (mine[i] != theirs[i]) out.push_back(i);
  }
  return out;
}

Comparison Compare(std::vector<Item> mine, std::vector<Item> theirs) {
  std::map<ObjectRef, uint64_t> held;
  for (const Item& t : theirs) held[t.object] = std::max(held[t.object], t.hlc);
  Comparison c;
  std::map<ObjectRef, uint64_t> own;
  for (Item& m : mine) {
    own[m.object] = std::max(own[m.object], m.hlc);
    auto it = held.find(m.object);
    if (it == held.end() || it->second < m.hlc) c.push.push_back(std::move(m));
  }
  for (Item& t : theirs) {
    auto it = own.find(t.object);
    if (it == own.end() || it->second < t.hlc) c.pull.push_back(std::move(t));
  }
  return c;
}

}  // namespace porcupine::replication
