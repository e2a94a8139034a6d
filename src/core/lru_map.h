// A map with a fixed capacity that forgets its least recently touched entry
// to make room: the bounded tables of the login throttle and of the password
// cache (memory stays bounded whatever clients send).
//
// Thread-compatible: the caller serializes access. Pointers returned by Find
// stay valid until that entry is erased or evicted.
#pragma once

#include <cstddef>
#include <list>
#include <unordered_map>
#include <utility>

namespace porcupine {

template <typename K, typename V, typename Hash = std::hash<K>>
class LruMap {
 public:
  // REQUIRES: capacity >= 1.
  explicit LruMap(size_t capacity) : capacity_(capacity) {}
  LruMap(const LruMap&) = delete;
  LruMap& operator=(const LruMap&) = delete;

  // The entry, or null; does not change the order.
  V* Find(const K& key) {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &it->second->second;
  }
  // The entry, made the most recently touched; created from V{} when
  // missing, evicting the least recently touched entry when full.
  // *evicted (optional) tells whether one was.
  V& Touch(const K& key, bool* evicted = nullptr) {
    if (evicted) *evicted = false;
    auto it = index_.find(key);
    if (it != index_.end()) {
      order_.splice(order_.begin(), order_, it->second);
      return it->second->second;
    }
    if (index_.size() >= capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
      if (evicted) *evicted = true;
    }
    order_.emplace_front(key, V{});
    index_.emplace(key, order_.begin());
    return order_.front().second;
  }
  void Erase(const K& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return;
    order_.erase(it->second);
    index_.erase(it);
  }
  // Erases entries from the least recently touched end while drop(value)
  // says so; stops at the first it keeps.
  template <typename Pred>
  void EraseOldestWhile(Pred drop) {
    while (!order_.empty() && drop(order_.back().second)) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }
  size_t size() const { return index_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  using Order = std::list<std::pair<K, V>>;
  const size_t capacity_;
  Order order_;  // most recently touched first
  std::unordered_map<K, typename Order::iterator, Hash> index_;
};

}  // namespace porcupine
