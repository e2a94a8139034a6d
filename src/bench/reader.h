// A POP3 reader session: repeatedly logs in as a user (picked with the
// recipient skew, never one another reader of this run holds), retrieves and
// deletes up to --retr-max messages, and QUITs to commit. Pauses --poll-ms
// after a session that found nothing or failed.
#pragma once

#include <asio.hpp>
#include <cstdint>

#include "bench/worker.h"

namespace porcupine::bench {

// `id` is the global reader index; it picks the node and seeds the session.
asio::awaitable<void> RunReader(SessionEnv env, uint32_t id);

}  // namespace porcupine::bench
