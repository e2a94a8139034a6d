// The cluster's ACME state, one record for the whole cluster (docs/security.md
// "ACME"): the account key, the certificate and its key, and the HTTP-01
// answers of an order in progress. It is stored as JSON in the reserved
// profile kRecordUser (store/records.proto Profile.system_record), so that the
// profile replication that gives every node every profile gives every node
// the certificate, and every node can answer a challenge.
//
// Pure data and its JSON form; no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace porcupine::acme {

// The reserved profile that carries the record. Not a mail address (no '@'):
// no client can log in as it or send to it.
inline constexpr char kRecordUser[] = "porcupine:acme";

struct Record {
  static constexpr int kVersion = 1;

  struct Account {
    std::string directory_url;  // the CA it belongs to
    std::string key_pem;        // ECDSA P-256, PKCS#8
    std::string url;            // the account URL ("kid"); "" = not registered yet
  } account;

  struct Certificate {
    std::vector<std::string> domains;  // as ordered, sorted
    std::string cert_pem;              // leaf first, then the CA's intermediates
    std::string key_pem;               // ECDSA P-256, PKCS#8
    int64_t not_after = 0;             // the leaf's notAfter, Unix seconds
    int64_t issued_at = 0;             // when this node stored it
  } certificate;

  // token -> key authorization (RFC 8555 §8.1) of the order in progress.
  std::map<std::string, std::string> challenges;

  bool has_certificate() const { return !certificate.cert_pem.empty(); }
};

// The JSON text of a record (docs/security.md lists the fields).
std::string EncodeRecord(const Record& r);
// A record from its JSON text; "" is an empty record. InvalidArgument for
// malformed JSON or a version this build does not know.
Result<Record> DecodeRecord(const std::string& text);

}  // namespace porcupine::acme
