// Which of a node's listeners may face the network, and the checks of its
// cluster TLS files before it serves (docs/security.md "Cluster and admin").
// Pure functions of the config, except CheckClusterTls, which reads files.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "node/config.h"

namespace porcupine::node {

// True when the host of `host_port` is loopback: "localhost", 127.0.0.0/8 or
// ::1. Anything else is not: 0.0.0.0 and :: (every interface), other
// addresses, and host names, which could resolve anywhere.
bool IsLoopback(const std::string& host_port);

// The refusal rules. OK when
//  - every cluster address the node listens on (listen.cluster), advertises
//    (cluster.advertise) or calls (cluster.seeds) is loopback, or mutual TLS
//    is configured and cluster.secret is set, or cluster.allow_insecure; and
//  - listen.admin is off or loopback, or admin HTTPS is configured and
//    admin.token is set, or admin.allow_insecure.
// Otherwise InvalidArgument naming the key, the address and what is missing.
Status CheckExposure(const Config& config);

// What CheckExposure let through only because of an allow_insecure key, one
// line each, for the log.
std::vector<std::string> InsecureWarnings(const Config& config);

// With cluster TLS configured: reads the three files and checks that the key
// matches the certificate, that it chains to the CA and is valid now, and
// that it names the host other nodes dial (cluster.advertise, else
// listen.cluster unless that binds every interface). InvalidArgument or
// IoError naming the key otherwise. Appends warnings (a key readable by
// others, expiry within 30 days) to *warnings. OK without TLS.
Status CheckClusterTls(const Config& config, std::vector<std::string>* warnings);

}  // namespace porcupine::node
