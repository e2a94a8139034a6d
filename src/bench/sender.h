// An SMTP sender session: connects, then loops MAIL / RCPT / DATA with
// generated messages (pipelined when the server allows), reusing the
// connection for --messages-per-connection messages and reconnecting after
// errors with a bounded backoff. Stops starting messages at the end of the
// window; returns when the last one has finished or the worker cut it off.
#pragma once

#include <asio.hpp>
#include <cstdint>

#include "bench/worker.h"

namespace porcupine::bench {

// `id` is the global sender index; it picks the node (id mod nodes) and seeds
// the session's random choices.
asio::awaitable<void> RunSender(SessionEnv env, uint32_t id);

}  // namespace porcupine::bench
