// The admin API's HTTP(S) server: cpp-httplib's request parsing and routing,
// with connection handling of our own that enforces HttpLimits
// (request_guard.h; docs/security.md, "Admin API limits").
//
// httplib 0.11 serves connections on a fixed pool of max(8, cores - 1)
// threads with an unbounded queue, and its only timeout is per read: eight
// clients trickling headers took every thread and /healthz waited behind
// them. Here:
//  - every admitted connection has a thread of its own (threads are made on
//    demand and kept, up to max_connections); a connection over the limit
//    takes one of health_connections slots kept for health checks, where its
//    request line must name /healthz or /readyz (else 503 and close; one
//    request, head within health_header_timeout); over that too it is
//    refused on the accept thread at once (a 503 over HTTP; closed over
//    HTTPS, where a plaintext reply means nothing), never queued;
//  - the connection's Stream (httplib's interface for a socket) polls with the
//    request's deadlines, counts the head's bytes and, over HTTPS, runs
//    OpenSSL itself, so the TLS handshake counts against the head deadline;
//  - a request cut by a deadline or the head size gets 408 / 431 and the
//    connection is closed.
// Stop() wakes every connection at once (an eventfd in every poll).
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <memory>

#include "admin/metrics.h"
#include "admin/request_guard.h"
#include "net/pki.h"

namespace porcupine::admin {

class GuardedHttpServer : public httplib::Server {
 public:
  // tls: the certificate for HTTPS (nullptr = plain HTTP); it must outlive
  // the server. metrics: the admin_* counters; must outlive the server.
  GuardedHttpServer(const HttpLimits& limits, std::shared_ptr<net::ReloadingServerCert> tls,
                    Metrics& metrics);
  ~GuardedHttpServer() override;
  GuardedHttpServer(const GuardedHttpServer&) = delete;
  GuardedHttpServer& operator=(const GuardedHttpServer&) = delete;

  // False when the TLS context or the wake-up descriptor could not be made.
  bool is_valid() const override;

  // After bind_to_port / bind_to_any_port: httplib listens with a backlog of
  // 5, so a burst of connections (slow clients, or a monitoring system's
  // probes) made the kernel drop SYNs and a health check waited 1 s or more
  // for the retransmission. Returns false when the socket refuses.
  bool WidenBacklog(int backlog);

  // Stops accepting, wakes every connection (they close at once), returns
  // while listen_after_bind() is still joining them. Thread-safe.
  void Shutdown();

 private:
  class Connection;
  class Pool;

  // Called by httplib for each accepted socket, on a pool thread (or on the
  // accept thread for a connection over the limit). Closes sock.
  bool process_and_close_socket(socket_t sock) override;
  void Refuse(socket_t sock);
  // health_slot: the connection is over max_connections, on a slot kept
  // for health checks.
  void Serve(socket_t sock, std::chrono::steady_clock::time_point accepted, bool health_slot);

  const HttpLimits limits_;
  HttpLimits health_limits_;  // limits_, with the head deadline of a health slot
  std::shared_ptr<net::ReloadingServerCert> tls_;
  SSL_CTX* ssl_ctx_ = nullptr;
  int wake_fd_ = -1;  // eventfd: readable once Shutdown() was called
  Metrics& metrics_;
};

}  // namespace porcupine::admin
