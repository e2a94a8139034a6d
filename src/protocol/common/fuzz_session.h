// The shared harness of the protocol session fuzz targets
// (src/protocol/*/fuzz/session_fuzz.cc).
//
// Input: byte 0 picks a fragment size (1..256), byte 1 picks which backend
// answers fail; the rest is what the client sends, as writes separated by
// 0xFF bytes (a write is what the client sends before it waits; a STARTTLS
// handshake cuts the write it happens in, as on the wire, where its later
// bytes would reach the TLS layer). A write that starts with 0xFE (the byte
// is dropped) makes the next handshake fail. Every session can start TLS.
// `drive(input, fragment, failures)` runs one session against its fake
// backend to the end and returns the transcript; whole and fragmented input
// must give the same one. Each Driver checks on its own that EOF closes the
// session and that every output chunk is whole CRLF lines (see the targets).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace porcupine::fuzz {

template <typename Drive>
int SessionWholeAndFragmented(const uint8_t* data, size_t size, Drive drive) {
  if (size < 2) return 0;
  const size_t fragment = 1 + data[0];
  const uint8_t failures = data[1];
  std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);
  const std::string whole = drive(input, input.size() + 1, failures);
  if (drive(input, fragment, failures) != whole) std::abort();
  return 0;
}

// Drives the session of `d` through `input` in `fragment`-sized pieces to
// EOF, with the checks every target makes; the transcript.
template <typename Driver>
std::string RunSession(Driver& d, std::string_view input, size_t fragment) {
  d.Start();
  for (;;) {
    size_t end = input.find('\xff');
    std::string_view write = input.substr(0, end);
    if (!write.empty() && write.front() == '\xfe') {
      write.remove_prefix(1);
      d.FailNextTls();
    }
    // Whole input: each write in one piece.
    d.FeedInPieces(write, std::min(fragment, std::max<size_t>(write.size(), 1)));
    if (end == std::string_view::npos) break;
    input.remove_prefix(end + 1);
  }
  d.Eof();
  if (!d.closed()) std::abort();       // EOF must end every session
  if (d.unterminated()) std::abort();  // every output chunk is whole CRLF lines
  return d.transcript();
}

}  // namespace porcupine::fuzz
