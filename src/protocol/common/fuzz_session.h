// The shared harness of the protocol session fuzz targets
// (src/protocol/*/fuzz/session_fuzz.cc).
//
// Input: byte 0 picks a fragment size (1..256), byte 1 picks which backend
// answers fail; the rest is what the client sends. `drive(input, fragment,
// failures)` runs one session against its fake backend to the end and
// returns the transcript; whole and fragmented input must give the same one.
// Each Driver checks on its own that EOF closes the session and that every
// output chunk is whole CRLF lines (see the targets).
#pragma once

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
  d.FeedInPieces(input, fragment);
  d.Eof();
  if (!d.closed()) std::abort();       // EOF must end every session
  if (d.unterminated()) std::abort();  // every output chunk is whole CRLF lines
  return d.transcript();
}

}  // namespace porcupine::fuzz
