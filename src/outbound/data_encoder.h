// Turns a message into the bytes of an SMTP DATA payload (RFC 5321 §4.5.2),
// incrementally: the message arrives in chunks split anywhere, each chunk is
// encoded straight into the caller's output buffer (the one copy the body
// makes on its way to the socket).
//
// - Every line end becomes CRLF: a bare LF, a bare CR and CRLF alike. SMTP
//   forbids bare CR and LF in the payload (§2.3.8), and a receiver that reads
//   "\n.\r\n" or "\r.\r" differently from its peers is how "SMTP smuggling"
//   hides a second message in the first; we never send either.
// - A line that starts with "." gets one more "." (transparency, §4.5.2).
// - Finish() ends an unterminated last line with CRLF and appends the
//   ".\r\n" end-of-data line.
//
// Thread-safety: none; one encoder per message.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace porcupine::outbound {

class DataEncoder {
 public:
  // Appends the encoding of `chunk` to *out. REQUIRES: Finish() not called.
  void Encode(std::string_view chunk, std::string* out);
  // Appends what ends the payload to *out; the encoder is then as new.
  void Finish(std::string* out);
  // Message bytes taken in so far (before encoding).
  uint64_t bytes_in() const { return bytes_in_; }

 private:
  bool line_start_ = true;   // the next byte starts a line
  bool pending_cr_ = false;  // the last byte seen was CR: its line end is not written yet
  uint64_t bytes_in_ = 0;
};

}  // namespace porcupine::outbound
