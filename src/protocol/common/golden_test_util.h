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

inline int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes the escapes of raw client bytes and message bodies in the golden
// files: \r \n \t \0 \\ \xHH; any other backslash stays as it is (IMAP
// flags are full of them).
inline std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char e = s[i + 1];
    if (e == 'r' || e == 'n' || e == 't' || e == '0' || e == '\\') {
      out += e == 'r' ? '\r' : e == 'n' ? '\n' : e == 't' ? '\t' : e == '0' ? '\0' : '\\';
      ++i;
    } else if (e == 'x' && i + 3 < s.size() && HexDigit(s[i + 2]) >= 0 && HexDigit(s[i + 3]) >= 0) {
      out += static_cast<char>(HexDigit(s[i + 2]) * 16 + HexDigit(s[i + 3]));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// "C: text" (or "C:" for an empty line, in case an editor trimmed the
// space) is a line plus CRLF; "C~ text" is raw escaped bytes.
inline bool IsClientLine(std::string_view l) {
  return l == "C:" || StartsWith(l, "C: ") || StartsWith(l, "C~ ");
}

// The bytes a client line sends.
inline std::string ClientBytes(std::string_view l) {
  if (StartsWith(l, "C~ ")) return Unescape(l.substr(3));
  return std::string(l.substr(std::min<size_t>(3, l.size()))) + "\r\n";
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
