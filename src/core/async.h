// Bridges callback APIs (store commits, thread pools) into asio coroutines.
#pragma once

#include <asio.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

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

// Runs every task concurrently on the caller's executor and resumes with
// their results in the tasks' order once all have finished. T must be
// default-constructible and copyable; tasks must not throw.
template <typename T>
asio::awaitable<std::vector<T>> WhenAll(std::vector<asio::awaitable<T>> tasks) {
  if (tasks.empty()) co_return std::vector<T>{};
  auto ex = co_await asio::this_coro::executor;
  struct Gather {
    std::mutex mu;
    std::vector<T> results;
    size_t left = 0;
  };
  auto g = std::make_shared<Gather>();
  g->results.resize(tasks.size());
  g->left = tasks.size();
  auto owned = std::make_shared<std::vector<asio::awaitable<T>>>(std::move(tasks));
  auto start = [ex, g, owned](auto done) mutable {
    auto shared_done = std::make_shared<decltype(done)>(std::move(done));
    for (size_t i = 0; i < owned->size(); ++i) {
      auto finish = [g, i, shared_done](std::exception_ptr, T value) {
        std::unique_lock lock(g->mu);
        g->results[i] = std::move(value);
        if (--g->left == 0) {
          std::vector<T> all = std::move(g->results);
          lock.unlock();
          (*shared_done)(std::move(all));
        }
      };
      asio::co_spawn(ex, std::move((*owned)[i]), std::move(finish));
    }
  };
  co_return co_await AwaitCallback<std::vector<T>>(std::move(start));
}

}  // namespace porcupine
