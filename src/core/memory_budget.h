// A node-wide budget of memory that untrusted input may hold, and the
// reservations its holders take from it (docs/security.md, "Limits on
// untrusted input"). SMTP sessions reserve the buffer of the message they are
// receiving and IMAP sessions their literals (limits.message_memory_bytes):
// without it, every session could hold a whole message at once and a few
// hundred of them exhaust the machine.
//
// The budget only counts: it allocates nothing and frees nothing. A holder
// reserves before it allocates and releases after it frees.
#pragma once

#include <atomic>
#include <cstdint>

namespace porcupine {

// Thread-safe; lock-free.
class MemoryBudget {
 public:
  explicit MemoryBudget(uint64_t limit) : limit_(limit) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // Takes `bytes` when they fit under the limit with what is taken already;
  // otherwise takes nothing, counts a refusal and returns false.
  bool TryTake(uint64_t bytes);
  // Gives back bytes taken before. REQUIRES: at most what is taken.
  void Give(uint64_t bytes);

  uint64_t limit() const { return limit_; }
  uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  // The most ever taken at once.
  uint64_t peak() const { return peak_.load(std::memory_order_relaxed); }
  // TryTake calls that failed.
  uint64_t refusals() const { return refusals_.load(std::memory_order_relaxed); }

 private:
  const uint64_t limit_;
  std::atomic<uint64_t> used_{0};
  std::atomic<uint64_t> peak_{0};
  std::atomic<uint64_t> refusals_{0};
};

// The bytes one holder has of a budget; gives them back when it is reset,
// resized down or destroyed. Without a budget (nullptr) every size is
// granted: nothing is limited. Move-only; not thread-safe (one holder).
class MemoryReservation {
 public:
  MemoryReservation() = default;
  explicit MemoryReservation(MemoryBudget* budget) : budget_(budget) {}
  ~MemoryReservation() { Reset(); }
  MemoryReservation(MemoryReservation&& other) noexcept;
  MemoryReservation& operator=(MemoryReservation&& other) noexcept;
  MemoryReservation(const MemoryReservation&) = delete;
  MemoryReservation& operator=(const MemoryReservation&) = delete;

  // Holds exactly `bytes` afterwards. Growing can fail (the budget is
  // full): false, and what is held stays as it was. Shrinking never fails.
  bool Resize(uint64_t bytes);
  // Gives everything back.
  void Reset() { Resize(0); }
  uint64_t bytes() const { return bytes_; }

 private:
  MemoryBudget* budget_ = nullptr;
  uint64_t bytes_ = 0;
};

}  // namespace porcupine
