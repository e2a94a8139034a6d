#include "admin/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace porcupine::admin {
namespace {

using Clock = std::chrono::steady_clock;

// Set on the accept thread while it runs a task the pool refused: the task's
// process_and_close_socket then refuses its socket instead of serving it.
thread_local bool t_refusing = false;
// Set on a pool thread while it runs a task admitted on a health-check slot.
thread_local bool t_health_slot = false;

// A request line "GET /healthz HTTP/1.1" (or HEAD, /readyz, with a query).
bool IsHealthCheck(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return false;
  std::string_view method = line.substr(0, sp);
  if (method != "GET" && method != "HEAD") return false;
  std::string_view target = line.substr(sp + 1);
  target = target.substr(0, target.find(' '));
  std::string_view path = target.substr(0, target.find('?'));
  return path == "/healthz" || path == "/readyz";
}

// Waits until fd is ready for `events`, the deadline passes (false, *expired)
// or wake_fd becomes readable (false).
bool WaitFor(int fd, short events, Clock::time_point deadline, int wake_fd, bool* expired) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      *expired = true;
      return false;
    }
    pollfd fds[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
    int r = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count() + 1, 60000)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || (fds[1].revents & POLLIN)) return false;
    if (fds[0].revents) return true;  // ready, or an error the next call reports
  }
}

std::string Reply(int status, const char* reason, const std::string& error,
                  const std::string& message) {
  std::string body = R"({"error": ")" + error + R"(", "message": ")" + message + "\"}\n";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

void AddressOf(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int r = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
               : getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (r != 0) return;
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    port = ntohs(a->sin6_port);
  }
  ip = buf;
}

}  // namespace

// httplib's task queue, replaced: one thread per admitted connection, made on
// demand and kept for later ones, at most `max`; over that up to `health`
// more run with t_health_slot set; over that too the task runs at once on the
// accept thread with t_refusing set.
class GuardedHttpServer::Pool : public httplib::TaskQueue {
 public:
  Pool(size_t max, size_t health) : max_(max), health_max_(health) {}
  ~Pool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard lock(mu_);
      const bool health = active_ >= max_;
      if (!stopping_ && (!health || health_active_ < health_max_) &&
          (idle_ + starting_ > jobs_.size() || Spawn())) {
        ++(health ? health_active_ : active_);
        jobs_.push_back({std::move(fn), health});
        cv_.notify_one();
        return;
      }
    }
    t_refusing = true;
    fn();
    t_refusing = false;
  }

  void shutdown() override {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      threads.swap(threads_);
    }
    cv_.notify_all();
    for (std::thread& t : threads) t.join();
  }

 private:
  // A new worker; false when the system refuses a thread (the connection is
  // then refused like one over the limit, not a crash of the accept loop).
  // REQUIRES: mu_ held.
  bool Spawn() {
    try {
      threads_.emplace_back([this] { Work(); });
    } catch (const std::system_error&) {
      return false;
    }
    ++starting_;
    return true;
  }

  void Work() {
    // OpenSSL writes to the socket itself (write(2), no MSG_NOSIGNAL): a client
    // gone away must give EPIPE, not kill the node.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    std::unique_lock lock(mu_);
    --starting_;
    for (;;) {
      ++idle_;
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      --idle_;
      if (jobs_.empty()) return;  // stopping, nothing left
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      t_health_slot = job.health;
      job.fn();
      t_health_slot = false;
      lock.lock();
      --(job.health ? health_active_ : active_);
    }
  }

  struct Job {
    std::function<void()> fn;
    bool health = false;  // admitted on a health-check slot
  };

  const size_t max_;
  const size_t health_max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;              // guarded by mu_
  std::vector<std::thread> threads_;  // guarded by mu_
  size_t active_ = 0;                 // queued or running; guarded by mu_
  size_t health_active_ = 0;          // those on health slots; guarded by mu_
  size_t idle_ = 0;                   // threads waiting for a job; guarded by mu_
  size_t starting_ = 0;               // threads made, not yet waiting; guarded by mu_
  bool stopping_ = false;             // guarded by mu_
};

// One connection: httplib's Stream over a non-blocking socket, optionally
// TLS, every wait bounded by the current request's deadlines.
class GuardedHttpServer::Connection : public httplib::Stream {
 public:
  Connection(int fd, const HttpLimits& limits, int wake_fd)
      : fd_(fd), wake_fd_(wake_fd), guard_(limits) {}
  ~Connection() override {
    if (ssl_) SSL_free(ssl_);
  }

  RequestGuard& guard() { return guard_; }
  bool stopped() const { return stopped_; }

  // The TLS handshake, within the head deadline of the first request.
  bool Handshake(SSL_CTX* ctx) {
    ssl_ = SSL_new(ctx);
    if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) return false;
    for (;;) {
      ERR_clear_error();
      int r = SSL_accept(ssl_);
      if (r == 1) return handshaken_ = true;
      if (!WaitSsl(r, guard_.read_deadline(), /*reading=*/true)) return false;
    }
  }

  // Reads until the request line (up to its LF) is buffered, within the
  // head deadline, and shows it in *line; the bytes stay buffered for the
  // parser. False when the client closed, the deadline passed (the request
  // is cut) or the line does not fit the buffer.
  bool PeekRequestLine(std::string_view* line) {
    for (;;) {
      const char* begin = buf_ + pos_;
      if (const void* lf = std::memchr(begin, '\n', len_ - pos_)) {
        *line = std::string_view(begin, static_cast<size_t>(static_cast<const char*>(lf) - begin));
        return true;
      }
      std::memmove(buf_, begin, len_ - pos_);
      len_ -= pos_;
      pos_ = 0;
      if (len_ == sizeof buf_ || !Receive(len_)) return false;
    }
  }

  // Waits up to `timeout` for the next request's first byte.
  bool WaitNextRequest(std::chrono::seconds timeout) {
    if (pos_ < len_ || (ssl_ && SSL_pending(ssl_) > 0)) return true;
    bool expired = false;
    return WaitFor(fd_, POLLIN, Clock::now() + timeout, wake_fd_, &expired);
  }

  // Best effort, bounded by a short deadline: the reply to a cut request
  // (nothing when the TLS handshake did not finish).
  void SendFinal(const std::string& text) {
    if (ssl_ && !handshaken_) return;
    auto deadline = Clock::now() + std::chrono::seconds(1);
    WriteAll(text.data(), text.size(), deadline);
  }

  // Closes gracefully: after a cut the client may still be sending, and a
  // close with unread bytes would reset the connection and could destroy the
  // reply before the client reads it; so stop writing, then read and drop
  // what comes for a moment.
  void Close(bool linger) {
    if (handshaken_ && !stopped_) {
      ERR_clear_error();
      SSL_shutdown(ssl_);  // one attempt: the close_notify, no wait for the client's
    }
    ::shutdown(fd_, SHUT_WR);
    if (linger && !stopped_) {
      auto deadline = Clock::now() + std::chrono::milliseconds(500);
      char sink[4096];
      bool expired = false;
      while (WaitFor(fd_, POLLIN, deadline, wake_fd_, &expired)) {
        ssize_t n = ::recv(fd_, sink, sizeof sink, 0);
        if (n <= 0 && !(n < 0 && errno == EINTR)) break;
      }
    }
    ::close(fd_);
  }

  // httplib::Stream
  bool is_readable() const override { return pos_ < len_; }
  bool is_writable() const override {
    return !stopped_ && guard_.cut() == RequestGuard::Cut::kNone;
  }

  ssize_t read(char* ptr, size_t size) override {
    if (guard_.cut() != RequestGuard::Cut::kNone || stopped_) return -1;
    if (pos_ == len_ && !Fill()) return -1;
    size_t n = std::min(size, len_ - pos_);
    size_t admitted = guard_.Admit(buf_ + pos_, n, Clock::now());
    if (admitted == 0) return -1;
    std::memcpy(ptr, buf_ + pos_, admitted);
    pos_ += admitted;
    return static_cast<ssize_t>(admitted);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    if (!WriteAll(ptr, size, guard_.WriteDeadline(Clock::now()))) {
      guard_.CutFor(RequestGuard::Cut::kWriteTimeout);
      return -1;
    }
    return static_cast<ssize_t>(size);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    AddressOf(fd_, true, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    AddressOf(fd_, false, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  // Reads what is there into buf_, waiting until the read deadline.
  bool Fill() {
    pos_ = len_ = 0;
    return Receive(0);
  }

  // Reads what is there into buf_ from `at` (len_ = at + what came),
  // waiting until the read deadline. REQUIRES: at < sizeof buf_.
  bool Receive(size_t at) {
    char* into = buf_ + at;
    const size_t room = sizeof buf_ - at;
    for (;;) {
      if (ssl_) {
        ERR_clear_error();
        int r = SSL_read(ssl_, into, static_cast<int>(room));
        if (r > 0) {
          len_ = at + static_cast<size_t>(r);
          return true;
        }
        if (!WaitSsl(r, guard_.read_deadline(), true)) return false;
        continue;
      }
      ssize_t n = ::recv(fd_, into, room, 0);
      if (n > 0) {
        len_ = at + static_cast<size_t>(n);
        return true;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return false;
      if (!Wait(POLLIN, guard_.read_deadline(), true)) return false;
    }
  }

  bool WriteAll(const char* p, size_t size, Clock::time_point deadline) {
    while (size > 0) {
      ssize_t n;
      if (ssl_) {
        ERR_clear_error();
        n = SSL_write(ssl_, p, static_cast<int>(std::min<size_t>(size, 1 << 20)));
        if (n <= 0) {
          if (!WaitSsl(static_cast<int>(n), deadline, false)) return false;
          continue;
        }
      } else {
        n = ::send(fd_, p, size, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
          if (!Wait(POLLOUT, deadline, false)) return false;
          continue;
        }
      }
      p += n;
      size -= static_cast<size_t>(n);
    }
    return true;
  }

  // After an OpenSSL call returned r <= 0: waits for what it wants.
  bool WaitSsl(int r, Clock::time_point deadline, bool reading) {
    switch (SSL_get_error(ssl_, r)) {
      case SSL_ERROR_WANT_READ:
        return Wait(POLLIN, deadline, reading);
      case SSL_ERROR_WANT_WRITE:
        return Wait(POLLOUT, deadline, reading);
      default:
        return false;
    }
  }

  bool Wait(short events, Clock::time_point deadline, bool reading) {
    bool expired = false;
    if (WaitFor(fd_, events, deadline, wake_fd_, &expired)) return true;
    if (expired) {
      if (reading) {
        guard_.ReadExpired();
      } else {
        guard_.CutFor(RequestGuard::Cut::kWriteTimeout);
      }
    } else {
      stopped_ = true;
    }
    return false;
  }

  const int fd_;
  const int wake_fd_;
  SSL* ssl_ = nullptr;
  bool handshaken_ = false;
  RequestGuard guard_;
  bool stopped_ = false;
  char buf_[4096];
  size_t pos_ = 0;
  size_t len_ = 0;
};

}  // namespace porcupine::admin

namespace porcupine::admin {

GuardedHttpServer::GuardedHttpServer(const HttpLimits& limits,
                                     std::shared_ptr<net::ReloadingServerCert> tls,
                                     Metrics& metrics)
    : limits_(limits), tls_(std::move(tls)), metrics_(metrics) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (tls_) {
    ssl_ctx_ = SSL_CTX_new(TLS_server_method());
    if (ssl_ctx_) {
      tls_->Attach(ssl_ctx_);  // TLS 1.2+, no compression or renegotiation, the certificate
      SSL_CTX_set_mode(ssl_ctx_, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
  }
  health_limits_ = limits_;
  health_limits_.header_timeout = std::min(limits_.header_timeout, limits_.health_header_timeout);
  size_t max = limits_.max_connections;
  size_t health = limits_.health_connections;
  new_task_queue = [max, health] { return new Pool(max, health); };
  set_payload_max_length(limits_.max_body_bytes);
  set_keep_alive_timeout(limits_.keep_alive_timeout.count());
}

GuardedHttpServer::~GuardedHttpServer() {
  if (ssl_ctx_) SSL_CTX_free(ssl_ctx_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

bool GuardedHttpServer::is_valid() const { return wake_fd_ >= 0 && (!tls_ || ssl_ctx_); }

bool GuardedHttpServer::WidenBacklog(int backlog) {
  socket_t sock = svr_sock_;
  return sock != INVALID_SOCKET && ::listen(sock, backlog) == 0;
}

void GuardedHttpServer::Shutdown() {
  uint64_t one = 1;
  if (wake_fd_ >= 0) {
    ssize_t r = ::write(wake_fd_, &one, sizeof one);
    (void)r;  // an eventfd at its maximum is readable already
  }
  stop();
}

bool GuardedHttpServer::process_and_close_socket(socket_t sock) {
  if (t_refusing) {
    Refuse(sock);
    return false;
  }
  Serve(sock, Clock::now(), t_health_slot);
  return true;
}

// On the accept thread: must not block. Over HTTP a 503 (the client's request
// is not read: it may not have arrived), over HTTPS just the close.
void GuardedHttpServer::Refuse(socket_t sock) {
  metrics_.admin.refused->Increment();
  if (!tls_) {
    static const std::string kBusy =
        Reply(503, "Service Unavailable", "unavailable", "too many admin connections");
    ssize_t r = ::send(sock, kBusy.data(), kBusy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)r;  // best effort: the close says the rest
  }
  ::shutdown(sock, SHUT_WR);
  ::close(sock);
}

void GuardedHttpServer::Serve(socket_t sock, Clock::time_point accepted, bool health_slot) {
  metrics_.admin.connections->Increment();
  int flags = fcntl(sock, F_GETFL, 0);
  fcntl(sock, F_SETFL, flags | O_NONBLOCK);
  Connection conn(sock, health_slot ? health_limits_ : limits_, wake_fd_);
  conn.guard().Start(accepted);  // over HTTPS the handshake counts against the head deadline
  bool ok = !tls_ || conn.Handshake(ssl_ctx_);
  // A health slot serves one health check: anything else is refused as soon
  // as its request line shows what it is.
  if (ok && health_slot) {
    std::string_view line;
    if (conn.PeekRequestLine(&line) && IsHealthCheck(line)) {
      metrics_.admin.health_slot_served->Increment();
    } else if (conn.guard().cut() == RequestGuard::Cut::kNone && !conn.stopped()) {
      metrics_.admin.refused->Increment();
      conn.SendFinal(
          Reply(503, "Service Unavailable", "unavailable", "too many admin connections"));
      conn.Close(/*linger=*/true);
      metrics_.admin.connections->Decrement();
      return;
    } else {
      ok = false;  // cut by the head deadline (408 below), or stopping
    }
  }
  const size_t requests = health_slot ? 1 : keep_alive_max_count_;
  for (size_t i = 0; ok && i < requests; ++i) {
    if (i > 0) {
      if (!conn.WaitNextRequest(limits_.keep_alive_timeout)) break;
      conn.guard().Start(Clock::now());
    }
    bool closed = false;
    ok = process_request(conn, i + 1 == requests, closed, nullptr) && !closed;
    // httplib answers a request it could not read with 400 and reports success
    // even when the answer could not be written (a cut stream refuses it).
    ok = ok && conn.guard().cut() == RequestGuard::Cut::kNone && !conn.stopped();
  }
  RequestGuard::Cut cut = conn.guard().cut();
  if (cut != RequestGuard::Cut::kNone && !conn.stopped()) {
    metrics_.admin.cut[static_cast<int>(cut)]->Increment();
    // The head was not read in full: the request cannot be answered, only refused.
    if (cut == RequestGuard::Cut::kHeaderSize) {
      conn.SendFinal(Reply(431, "Request Header Fields Too Large", "invalid_argument",
                           "request head larger than admin.max_header_bytes"));
    } else if (cut != RequestGuard::Cut::kWriteTimeout) {
      conn.SendFinal(Reply(408, "Request Timeout", "unavailable",
                           std::string("request not received within admin.") +
                               (cut == RequestGuard::Cut::kBodyTimeout ? "body" : "header") +
                               "_timeout_s"));
    }
  }
  conn.Close(/*linger=*/cut != RequestGuard::Cut::kNone);
  metrics_.admin.connections->Decrement();
}

}  // namespace porcupine::admin
