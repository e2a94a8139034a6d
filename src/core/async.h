// Bridges callback APIs (store commits, thread pools) into asio coroutines.
#pragma once

#include <asio.hpp>
#include <memory>
#include <utility>

namespace porcupine {

// Calls start(callback) and suspends the coroutine until callback(value) runs
// (on any thread). The coroutine resumes on its own executor.
// REQUIRES: start invokes callback exactly once.
//
// The callable lives on the heap and only a raw pointer passes through
// asio's initiation coroutine: g++ 12 bitwise-copies lambda temporaries that
// cross a co_await (see docs/development.md, "g++ 12 and coroutines").
template <typename T, typename Start>
asio::awaitable<T> AwaitCallback(Start start) {
  Start* owned = new Start(std::move(start));
  return asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      [owned](auto handler) {
        std::unique_ptr<Start> s(owned);
        auto ex = asio::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        (*s)([ex, h](T value) mutable {
          asio::post(ex, [h, value = std::move(value)]() mutable { (*h)(std::move(value)); });
        });
      },
      asio::use_awaitable);
}

// Runs fn() on `pool` (CPU-heavy work such as password hashing) and resumes
// the calling coroutine on its own executor with fn's result.
template <typename Fn>
auto RunOn(asio::any_io_executor pool, Fn fn) -> asio::awaitable<decltype(fn())> {
  using T = decltype(fn());
  return AwaitCallback<T>([pool, fn = std::move(fn)](auto done) mutable {
    asio::post(pool, [fn = std::move(fn), done = std::move(done)]() mutable { done(fn()); });
  });
}

}  // namespace porcupine
