// Wires the ACME client (acme/) to the node: the cluster-wide record in the
// reserved profile acme::kRecordUser, the TLS server's reload, the HTTP-01
// listener, metrics and the clock (docs/security.md "ACME").
//
// Every node with [acme] installs the stored certificate when it changes;
// only the manager of the record's bucket orders (acme::Plan decides). The
// loop runs on a thread of its own (the HTTP client blocks); profile writes
// go through the event loop.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <asio.hpp>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "acme/http01.h"
#include "acme/record.h"
#include "admin/metrics.h"
#include "core/hlc.h"
#include "core/status.h"
#include "net/tls.h"
#include "node/cluster_runtime.h"
#include "node/config.h"
#include "node/directory.h"
#include "store/store.h"

namespace porcupine::node {

class AcmeRuntime {
 public:
  // Where the node's TLS server reads the ACME certificate from.
  struct Files {
    std::string cert_file;
    std::string key_file;
  };
  static Files FilesFor(const std::string& data_dir);

  // Before the TLS server loads: writes the stored certificate to the files
  // when the store holds a valid one, else a self-signed placeholder for
  // `domains` when the files do not exist yet (so that TLS listeners can
  // start; docs/security.md says what clients see meanwhile).
  static Status PrepareFiles(store::Store& store, const Files& files,
                             const std::vector<std::string>& domains);

  // `tls` may be null (then nothing is installed; the record is still kept).
  AcmeRuntime(const Config& config, store::Store& store, ProfileReplicas& profiles, Hlc& hlc,
              ClusterRuntime& runtime, net::TlsServer* tls, admin::Metrics& metrics,
              asio::io_context& io);
  ~AcmeRuntime();  // stops
  AcmeRuntime(const AcmeRuntime&) = delete;
  AcmeRuntime& operator=(const AcmeRuntime&) = delete;

  // Binds listen.acme_http (if set) and starts the loop. IoError when the
  // listener cannot be bound. `bound` gets the listener's address.
  Status Start(std::string* bound);
  // Asks the loop to stop (an order in progress is abandoned at its next
  // step); does not wait. Any thread.
  void RequestStop();
  // RequestStop, then waits for the loop and closes the HTTP-01 listener.
  // REQUIRES: not on the event loop while it runs (the loop may be waiting
  // for a write there).
  void Stop();

 private:
  void Loop();
  void Tick();
  Result<acme::Record> ReadRecord();
  Status WriteRecord(const std::function<void(acme::Record&)>& change);
  void Install(const acme::Record& r);
  void Order(acme::Record record);
  bool IsOrderer();
  bool Wait(std::chrono::milliseconds d);
  bool stopping();
  std::optional<std::string> Answer(const std::string& token);
  void AddMetrics();

  const Config& config_;
  const Config::Acme& acme_;
  const std::vector<std::string> domains_;
  const Files files_;
  store::Store& store_;
  ProfileReplicas& profiles_;
  Hlc& hlc_;
  ClusterRuntime& runtime_;
  net::TlsServer* const tls_;
  admin::Metrics& metrics_;
  asio::io_context& io_;
  std::unique_ptr<acme::Http01Responder> http_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;               // guarded by mu_
  std::string installed_cert_pem_;  // the loop thread only
  int failures_ = 0;                // in a row; the loop thread only
  int64_t retry_at_ = 0;            // the loop thread only

  prometheus::Counter* orders_ok_ = nullptr;
  prometheus::Counter* orders_failed_ = nullptr;
  prometheus::Counter* installs_ = nullptr;
  prometheus::Counter* challenges_answered_ = nullptr;
  prometheus::Gauge* cert_expiry_ = nullptr;
  prometheus::Gauge* next_attempt_ = nullptr;
};

}  // namespace porcupine::node
