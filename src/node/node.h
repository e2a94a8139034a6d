// One porcupine node: opens the store, rebuilds soft state, serves SMTP, POP3
// and the admin API until asked to stop (DESIGN.md §3).
#pragma once

#include <memory>

#include "core/status.h"
#include "node/config.h"

namespace porcupine::node {

class Node {
 public:
  explicit Node(Config config);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Opens the store, rebuilds, binds every listener and writes
  // <data_dir>/listen.json with the bound addresses. Errors name the cause.
  Status Start();
  // Serves until SIGTERM/SIGINT or Stop(): then stops accepting, lets
  // sessions finish or aborts them cleanly (bounded), flushes the store.
  void Run();
  // Thread-safe; may be called from any thread.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace porcupine::node
