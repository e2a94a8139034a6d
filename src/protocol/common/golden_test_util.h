// The golden-transcript files of the protocol tests (src/protocol/*/testdata,
// replayed by each protocol's transcript_test.cc): reading them and the
// compare-or-rewrite loop. Test-only.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/common/session.h"

namespace porcupine::protocol::golden {

inline std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

inline bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The TLS setup directive of every protocol's golden files: "!tls available"
// (the driver can start TLS: STARTTLS is offered) or "!tls secure" (an
// implicit-TLS listener: secure from the start). False for other lines.
inline bool ApplyTlsSetup(std::string_view l, Transport* t) {
  if (l == "!tls available") {
    t->tls_available = true;
    return true;
  }
  if (l == "!tls secure") {
    t->tls_available = true;
    t->secure = true;
    return true;
  }
  return false;
}

// The transport golden files start from: a plaintext connection from a
// loopback peer (cleartext logins allowed, as for local clients).
inline Transport LoopbackTransport() {
  Transport t;
  t.peer_loopback = true;
  return t;
}

// "!peer remote": the client is not on loopback, so cleartext logins are
// refused until the connection is secure. False for other lines.
inline bool ApplyPeerSetup(std::string_view l, Transport* t) {
  if (l != "!peer remote") return false;
  t->peer_loopback = false;
  return true;
}

// The drivers' transcript line for a handshake: what the client sends after
// it is a new write (encrypted, it cannot share a write with plaintext).
inline bool IsHandshakeLine(std::string_view l) {
  return l == "-- starttls" || l == "-- starttls failed";
}

// Every .txt file of `dir` (at least `min_files`), in name order: `replay`
// turns its lines into the transcript the session makes, which must equal
// the file (PORCUPINE_UPDATE_GOLDEN=1 rewrites files that differ instead);
// then `fragmented` replays that transcript again in pieces.
template <typename Replay, typename Fragmented>
void ReplayAll(const std::filesystem::path& dir, size_t min_files, Replay replay,
               Fragmented fragmented) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".txt") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), min_files) << "testdata missing under " << dir;
  const bool update = std::getenv("PORCUPINE_UPDATE_GOLDEN") != nullptr;
  for (const std::filesystem::path& file : files) {
    SCOPED_TRACE(file.filename().string());
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    const std::string actual = replay(SplitLines(text.str()));
    if (update && actual != text.str()) {
      std::ofstream(file, std::ios::binary) << actual;
      ADD_FAILURE() << "rewrote " << file;
      continue;
    }
    EXPECT_EQ(actual, text.str());
    fragmented(actual);
  }
}

}  // namespace porcupine::protocol::golden
