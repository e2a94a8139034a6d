// The shape shared by every protocol session engine.
//
// A session is a pure state machine: the network driver feeds it client
// bytes and end-of-input, and pulls Steps from it. A step says what the
// session needs next: more input, a backend request answered (the driver
// performs it and calls the session's Complete(...)), a pause (tarpit), or the
// end of the connection. Reply bytes accumulate in an output buffer that the
// driver drains with TakeOutput() before acting on a step. Sessions never
// touch sockets, clocks, files or the cluster.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace porcupine::protocol {

template <typename Request>
struct Step {
  enum class Kind {
    kNeedInput,  // feed more bytes (or OnEof / OnIdleTimeout)
    kRequest,    // perform `request`, then call the session's Complete(...)
    kDelay,      // wait `delay` before pulling the next step (tarpit)
    kClose,      // flush output, then close the connection
  };
  Kind kind = Kind::kNeedInput;
  std::optional<Request> request;      // set for kRequest
  std::chrono::milliseconds delay{0};  // set for kDelay

  static Step NeedInput() { return {}; }
  static Step Close() { return {Kind::kClose, std::nullopt, {}}; }
  static Step Delay(std::chrono::milliseconds d) { return {Kind::kDelay, std::nullopt, d}; }
  static Step Do(Request r) { return {Kind::kRequest, std::move(r), {}}; }
};

}  // namespace porcupine::protocol
