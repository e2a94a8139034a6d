// The admin HTTP API (JSON; docs/admin-api.md): health, readiness, metrics
// and user management. Runs cpp-httplib on its own threads; every call into
// the node goes through AdminBackend, which may block.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "admin/metrics.h"
#include "admin/request_guard.h"
#include "core/status.h"
#include "net/pki.h"

namespace porcupine::admin {

class GuardedHttpServer;

// What the API asks of the node. Called from HTTP worker threads; blocking is
// fine. Addresses arrive as the client sent them.
class AdminBackend {
 public:
  virtual ~AdminBackend() = default;
  virtual bool Ready() = 0;
  // InvalidArgument (bad address, non-local domain, empty password),
  // AlreadyExists, NotFound as the operation implies.
  virtual Status AddUser(const std::string& address, const std::string& password) = 0;
  virtual Status DeleteUser(const std::string& address) = 0;
  virtual Status SetPassword(const std::string& address, const std::string& password) = 0;
  // Where a user lives: {"address", "bucket", "manager", "mail_map": [names]}.
  virtual Result<nlohmann::json> UserInfo(const std::string& address) = 0;
  // What this node itself holds of a user's mail (checkers, debugging):
  // {"node", "messages": [{"id", "hlc", "tombstone", "replicas"}]}.
  virtual Result<nlohmann::json> LocalFragment(const std::string& address) = 0;
  // Every user of the cluster; Unavailable when a member cannot answer.
  virtual Result<std::vector<std::string>> ListUsers() = 0;
  // The view as this node sees it (docs/admin-api.md, GET /v1/cluster).
  virtual nlohmann::json ClusterStatus() = 0;
  // Takes a node out of the cluster for good (by name or id). NotFound for
  // an unknown node, InvalidArgument for the node serving this call.
  virtual Status RemoveNode(const std::string& name_or_id) = 0;
};

struct AdminOptions {
  std::string token;  // "" = no authentication (bind to loopback then)
  // When set, the API speaks HTTPS only, with this certificate (which follows
  // its files); nullptr = plain HTTP (loopback only: node/protection.h).
  std::shared_ptr<net::ReloadingServerCert> tls;
  // Deadlines, sizes and the connection limit (request_guard.h).
  HttpLimits limits;
};

class AdminServer {
 public:
  // With options.tls the server is HTTPS; Listen fails if it cannot be set up.
  AdminServer(const AdminOptions& options, AdminBackend& backend, Metrics& metrics);
  ~AdminServer();  // stops the server

  // Binds host:port (port 0 = any); returns the bound port or IoError.
  Result<int> Listen(const std::string& host, int port);
  // Serves on a background thread until Stop().
  void Start();
  void Stop();

 private:
  void Routes();

  AdminOptions options_;
  AdminBackend& backend_;
  Metrics& metrics_;
  std::unique_ptr<GuardedHttpServer> http_;
  std::thread thread_;
};

}  // namespace porcupine::admin
