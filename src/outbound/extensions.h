// The service extensions an SMTP server announces in its EHLO reply
// (RFC 5321 §4.1.1.1): every line after the first is "keyword [params]",
// keywords case-insensitive. Unknown keywords are ignored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "outbound/reply.h"

namespace porcupine::outbound {

struct Extensions {
  bool pipelining = false;             // RFC 2920
  bool size = false;                   // RFC 1870: SIZE= may be sent on MAIL
  uint64_t max_size = 0;               // SIZE's fixed limit; 0 = none announced
  bool eight_bit_mime = false;         // RFC 6152
  bool starttls = false;               // RFC 3207
  bool smtputf8 = false;               // RFC 6531
  bool enhanced_status_codes = false;  // RFC 2034
  // AUTH mechanisms (RFC 4954), upper case, from "AUTH m1 m2" and the old
  // "AUTH=m1 m2" form, without duplicates.
  std::vector<std::string> auth;

  // Whether `mechanism` (any case) is among `auth`.
  bool HasAuth(std::string_view mechanism) const;
};

// Reads the extensions of a 250 reply to EHLO. A SIZE whose parameter is not
// a number (or overflows) counts as offered without a limit.
Extensions ParseExtensions(const Reply& ehlo_reply);

}  // namespace porcupine::outbound
