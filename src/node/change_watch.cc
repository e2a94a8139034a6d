#include "node/change_watch.h"

#include <vector>

namespace porcupine::node {

ChangeWatch::ChangeWatch(const ChangeWatchOptions& options, mail::NodeDirectory& nodes,
                         manager::ViewSource& views, asio::any_io_executor ex)
    : options_(options), nodes_(nodes), views_(views), ex_(std::move(ex)) {}

ChangeWatch::~ChangeWatch() { Stop(); }

void ChangeWatch::Start() { asio::co_spawn(ex_, Supervise(), asio::detached); }

void ChangeWatch::Stop() { stopped_ = true; }

ChangeWatch::Interest::~Interest() { watch_.Release(slot_); }

std::unique_ptr<ChangeWatch::Interest> ChangeWatch::Watch(const std::string& user) {
  const uint32_t slot = store::Store::VersionSlotOf(user);
  std::lock_guard lock(mu_);
  ++interest_[slot];
  return std::unique_ptr<Interest>(new Interest(*this, slot));
}

void ChangeWatch::Release(uint32_t slot) {
  std::lock_guard lock(mu_);
  auto it = interest_.find(slot);
  if (it == interest_.end() || --it->second > 0) return;
  interest_.erase(it);
  for (auto& [id, peer] : peers_) {
    peer.known.erase(slot);
    peer.armed.erase(slot);
  }
}

uint64_t ChangeWatch::Changes(const std::string& user) const {
  std::lock_guard lock(mu_);
  auto it = changes_.find(store::Store::VersionSlotOf(user));
  return it == changes_.end() ? 0 : it->second;
}

bool ChangeWatch::Armed(const std::string& user) const {
  const uint32_t slot = store::Store::VersionSlotOf(user);
  std::shared_ptr<const cluster::View> view = views_.Current();
  if (view->members.empty()) return false;
  // A member whose watch has not come back for a while may be gone.
  const auto fresh = std::chrono::steady_clock::now() - 3 * options_.wait;
  std::lock_guard lock(mu_);
  for (const cluster::Member& m : view->members) {
    auto it = peers_.find(m.id);
    if (it == peers_.end() || it->second.ok_at < fresh || !it->second.armed.count(slot)) {
      return false;
    }
  }
  return true;
}

asio::awaitable<void> ChangeWatch::Supervise() {
  asio::steady_timer timer(ex_);
  while (!stopped_) {
    std::shared_ptr<const cluster::View> view = views_.Current();
    for (const cluster::Member& m : view->members) {
      bool start = false;
      {
        std::lock_guard lock(mu_);
        start = peers_.emplace(m.id, Peer{}).second;
      }
      if (start) asio::co_spawn(ex_, PeerLoop(m.id), asio::detached);
    }
    timer.expires_after(options_.wait);
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<void> ChangeWatch::PeerLoop(cluster::NodeId id) {
  asio::steady_timer timer(ex_);
  auto pause = [&](std::chrono::milliseconds d) -> asio::awaitable<void> {
    timer.expires_after(d);
    asio::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  };
  while (!stopped_ && views_.Current()->Contains(id)) {
    const auto started = std::chrono::steady_clock::now();
    std::vector<mail::SlotVersion> slots;
    {
      std::lock_guard lock(mu_);
      Peer& peer = peers_[id];
      for (const auto& [slot, count] : interest_) {
        auto it = peer.known.find(slot);
        slots.push_back({slot, it == peer.known.end() ? 0 : it->second});  // 0: tell me now
      }
    }
    mail::FragmentStore* f = slots.empty() ? nullptr : nodes_.FragmentsOn(id);
    if (!f) {
      co_await pause(options_.wait);
      continue;
    }
    Result<std::vector<mail::SlotVersion>> changed =
        co_await f->WatchVersions(slots, options_.wait);
    {
      std::lock_guard lock(mu_);
      Peer& peer = peers_[id];
      if (changed.ok()) {
        std::set<uint32_t> reported;
        for (const mail::SlotVersion& s : *changed) {
          if (!interest_.count(s.slot)) continue;
          uint64_t& known = peer.known[s.slot];
          if (known != 0 && known != s.version) ++changes_[s.slot];
          known = s.version;
          reported.insert(s.slot);
        }
        // Covered: every slot sent with its version (a slot reported just
        // now is covered from the next call, which carries its version).
        peer.armed.clear();
        for (const mail::SlotVersion& s : slots) {
          if (s.version != 0 && interest_.count(s.slot)) peer.armed.insert(s.slot);
        }
        peer.ok_at = std::chrono::steady_clock::now();
      } else {
        peer.armed.clear();
      }
    }
    const auto spent = std::chrono::steady_clock::now() - started;
    const auto least = changed.ok() ? options_.min_interval : options_.wait;
    if (spent < least) {
      co_await pause(std::chrono::duration_cast<std::chrono::milliseconds>(least - spent));
    }
  }
  std::lock_guard lock(mu_);
  peers_.erase(id);
}

}  // namespace porcupine::node
