#include "admin/admin_server.h"

#include <httplib.h>
#include <sodium.h>
#include <sys/socket.h>

#include <nlohmann/json.hpp>

#include "admin/http_server.h"

namespace porcupine::admin {
namespace {

using nlohmann::json;

int HttpStatusOf(const Status& st) {
  switch (st.code()) {
    case Code::kOk:
      return 200;
    case Code::kInvalidArgument:
      return 400;
    case Code::kPermissionDenied:
      return 403;
    case Code::kNotFound:
      return 404;
    case Code::kAlreadyExists:
      return 409;
    case Code::kUnavailable:
    case Code::kUnknownOutcome:
    case Code::kAborted:
      return 503;
    default:
      return 500;
  }
}

void Reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", "application/json");
}

void ReplyStatus(httplib::Response& res, const Status& st, int ok_status) {
  if (st.ok()) {
    res.status = ok_status;
    if (ok_status != 204) res.set_content("{}\n", "application/json");
    return;
  }
  Reply(res, HttpStatusOf(st),
        {{"error", std::string(CodeName(st.code()))}, {"message", st.message()}});
}

// Parses a JSON object body; on failure writes a 400 and returns nullopt.
std::optional<json> JsonBody(const httplib::Request& req, httplib::Response& res) {
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    Reply(res, 400, {{"error", "invalid_argument"}, {"message", "body must be a JSON object"}});
    return std::nullopt;
  }
  return body;
}

// "Bearer <token>", compared in constant time.
bool TokenMatches(const std::string& header, const std::string& token) {
  const std::string want = "Bearer " + token;
  return header.size() == want.size() &&
         sodium_memcmp(header.data(), want.data(), want.size()) == 0;
}

std::string StringField(const json& body, const char* name) {
  auto it = body.find(name);
  return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

AdminServer::AdminServer(const AdminOptions& options, AdminBackend& backend, Metrics& metrics)
    : options_(options),
      backend_(backend),
      metrics_(metrics),
      http_(std::make_unique<GuardedHttpServer>(options.limits, options.tls, metrics)) {
  Routes();
}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::Routes() {
  httplib::Server& s = *http_;
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options_.token.empty() || req.path == "/healthz" || req.path == "/readyz") {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    if (TokenMatches(req.get_header_value("Authorization"), options_.token)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    Reply(res, 401, {{"error", "unauthenticated"}, {"message", "bearer token required"}});
    return httplib::Server::HandlerResponse::Handled;
  });
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  s.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    bool ready = backend_.Ready();
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ready\n" : "not ready\n", "text/plain");
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.Render(), "text/plain; version=0.0.4");
  });
  s.Get("/v1/users", [this](const httplib::Request&, httplib::Response& res) {
    Result<std::vector<std::string>> users = backend_.ListUsers();
    if (!users.ok()) {
      ReplyStatus(res, users.status(), 200);
      return;
    }
    Reply(res, 200, {{"users", *users}});
  });
  s.Get("/v1/cluster", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, backend_.ClusterStatus());
  });
  s.Post("/v1/cluster/remove", [this](const httplib::Request& req, httplib::Response& res) {
    auto body = JsonBody(req, res);
    if (!body) return;
    ReplyStatus(res, backend_.RemoveNode(StringField(*body, "node")), 200);
  });
  s.Post("/v1/users", [this](const httplib::Request& req, httplib::Response& res) {
    auto body = JsonBody(req, res);
    if (!body) return;
    ReplyStatus(
        res, backend_.AddUser(StringField(*body, "address"), StringField(*body, "password")), 201);
  });
  s.Get(R"(/v1/users/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    Result<nlohmann::json> info = backend_.UserInfo(req.matches[1]);
    if (!info.ok()) {
      ReplyStatus(res, info.status(), 200);
      return;
    }
    Reply(res, 200, *info);
  });
  s.Get(R"(/v1/fragments/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    Result<nlohmann::json> info = backend_.LocalFragment(req.matches[1]);
    if (!info.ok()) {
      ReplyStatus(res, info.status(), 200);
      return;
    }
    Reply(res, 200, *info);
  });
  s.Delete(R"(/v1/users/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    ReplyStatus(res, backend_.DeleteUser(req.matches[1]), 204);
  });
  s.Put(
      R"(/v1/users/([^/]+)/password)", [this](const httplib::Request& req, httplib::Response& res) {
        auto body = JsonBody(req, res);
        if (!body) return;
        ReplyStatus(res, backend_.SetPassword(req.matches[1], StringField(*body, "password")), 204);
      });
}

Result<int> AdminServer::Listen(const std::string& host, int port) {
  if (!http_->is_valid()) return Status::IoError("admin: cannot set up HTTPS");
  int bound =
      port == 0 ? http_->bind_to_any_port(host) : (http_->bind_to_port(host, port) ? port : -1);
  if (bound <= 0)
    return Status::IoError("admin: cannot listen on " + host + ":" + std::to_string(port));
  if (!http_->WidenBacklog(SOMAXCONN)) {
    return Status::IoError("admin: cannot listen on " + host + ":" + std::to_string(port));
  }
  return bound;
}

void AdminServer::Start() {
  thread_ = std::thread([this] { http_->listen_after_bind(); });
}

void AdminServer::Stop() {
  if (http_) http_->Shutdown();
  if (thread_.joinable()) thread_.join();
}

}  // namespace porcupine::admin
