// Mutual TLS for inter-node calls (docs/security.md "Cluster and admin",
// docs/wire.md): gRPC credentials built from the cluster CA and this node's
// certificate and key. Both sides present a certificate of the cluster CA and
// check the other's; the caller also checks that the callee's certificate
// names the address it dialled (subjectAltName), as any TLS client does. The
// files are read again every `refresh_s` seconds (gRPC's file-watcher
// provider), so replaced certificates take effect without a restart.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace porcupine::rpc {

struct TlsFiles {
  std::string ca_file;      // PEM: the cluster CA certificate(s) that peers must chain to
  std::string cert_file;    // PEM: this node's certificate (and intermediates)
  std::string key_file;     // PEM: its private key
  unsigned refresh_s = 60;  // the files are re-read this often
  // TLS is on when the files are named (all three or none: node/config.cc).
  bool enabled() const { return !ca_file.empty(); }
};

// Server credentials: TLS that requires a client certificate of the CA when
// files.enabled(), plaintext otherwise.
std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const TlsFiles& files);

// Channel credentials: TLS with this node's certificate, trusting only the
// cluster CA, when files.enabled(); plaintext otherwise.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const TlsFiles& files);

}  // namespace porcupine::rpc
