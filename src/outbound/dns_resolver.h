// Asynchronous DNS lookups for outbound mail through libunbound
// (docs/outbound.md "DNS" says why libunbound), driven by an asio executor.
//
// How it runs: libunbound resolves in a thread of its own (ub_ctx_async with
// threads, never its default fork). Answers come back through a pipe whose
// read end (ub_fd) this class watches with an asio stream_descriptor; when it
// is readable, ub_process() runs the completion callbacks. Every call into
// libunbound is made on one strand of the executor, so the io_context may
// run on several threads. Each query has an asio timer: a query not answered
// within DnsOptions::timeout is cancelled (ub_cancel) and ends kTimeout.
//
// Thread-safety: all public methods may be called from any thread.
// Lifetime: owned by shared_ptr. A coroutine lookup keeps the resolver alive
// until it ends; callback lookups and the internal handlers keep only weak
// references, and destroying the resolver ends every pending callback lookup
// with kServFail "resolver shut down".
#pragma once

#include <asio.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/status.h"
#include "outbound/dns_options.h"
#include "outbound/route_plan.h"

struct ub_ctx;
struct ub_result;

namespace porcupine::outbound {

class DnsResolver : public std::enable_shared_from_this<DnsResolver> {
 public:
  // Builds a libunbound context: forwarding to options.servers, or to the
  // nameservers of /etc/resolv.conf when there are none. InvalidArgument for
  // a bad server, IoError when resolv.conf cannot be read, Internal when
  // libunbound refuses its configuration. No query is sent yet.
  static Result<std::shared_ptr<DnsResolver>> Create(asio::any_io_executor executor,
                                                     const DnsOptions& options);
  ~DnsResolver();
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  // The MX records of `name`. Never fails as a coroutine: DNS failures are
  // in MxAnswer::status.
  asio::awaitable<MxAnswer> LookupMx(std::string name);
  // The A (v6 = false) or AAAA (v6 = true) records of `name`, CNAMEs
  // followed.
  asio::awaitable<AddressAnswer> LookupAddresses(std::string name, bool v6);

  // Callback forms of the above: `done` runs exactly once, on the strand,
  // or in the destroying thread when the resolver goes away first.
  void QueryMx(std::string name, std::function<void(MxAnswer)> done);
  void QueryAddresses(std::string name, bool v6, std::function<void(AddressAnswer)> done);

 private:
  struct Pending;
  DnsResolver(asio::any_io_executor executor, ub_ctx* ctx, int fd,
              std::chrono::milliseconds timeout);
  // Runs `finish` with the answer to (name, type), or with nullptr and a
  // LookupStatus of kTimeout/kServFail. On the strand.
  void Start(std::string name, int rrtype,
             std::function<void(const ub_result*, int err, LookupStatus failure)> finish);
  void WatchFd();
  void OnTimeout(Pending* p);
  static void OnResult(void* mydata, int err, ub_result* result);

  asio::strand<asio::any_io_executor> strand_;
  ub_ctx* ctx_;
  asio::posix::stream_descriptor fd_;  // a dup of ub_fd(ctx_)
  std::chrono::milliseconds timeout_;
  std::map<Pending*, std::unique_ptr<Pending>> pending_;  // on the strand only
};

}  // namespace porcupine::outbound
