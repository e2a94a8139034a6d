// The trace headers the SMTP server prepends to every message it accepts
// (RFC 5321 §4.4, RFC 5322 §3.6.7; protocol names from RFC 3848 / RFC 6531):
// Return-Path: first, then Received:. Every accepted message is a final
// delivery here (the node is never a relay), so both are added once, by the
// session, before the message is stored: every replica holds the same bytes.
#pragma once

#include <string>
#include <string_view>

namespace porcupine::smtp {

struct ReceivedFields {
  std::string_view helo;       // the client's HELO/EHLO argument
  std::string_view peer_ip;    // textual IPv4/IPv6 address; empty when unknown
  std::string_view hostname;   // this server
  std::string_view protocol;   // ReceivedProtocol()
  std::string_view id;         // queue id of this transaction
  std::string_view recipient;  // named in the "for" clause; empty omits it
  std::string_view date;       // RFC 5322 date-time
  // The user AUTH authenticated (an address from the backend, no CR/LF);
  // empty: not authenticated.
  std::string_view authenticated;
};

// The "with" protocol: "SMTP" after HELO, "ESMTP" after EHLO, "UTF8SMTP" for
// an EHLO transaction that used SMTPUTF8; after EHLO on a TLS connection
// "ESMTPS" / "UTF8SMTPS" (RFC 3848, RFC 6531); after a successful AUTH an
// "A" follows ("ESMTPA", "ESMTPSA", "UTF8SMTPA", "UTF8SMTPSA"). HELO has no
// TLS or AUTH variant (AUTH needs EHLO).
std::string_view ReceivedProtocol(bool ehlo, bool smtputf8, bool tls = false, bool auth = false);

// Formats the header, folded over three lines (four when authenticated),
// ending in CRLF:
//   Received: from <helo> ([<ip>])
//   \t(authenticated as <user>)            (only when authenticated)
//   \tby <hostname> (porcupine) with <protocol> id <id>
//   \tfor <<recipient>>; <date>
std::string FormatReceived(const ReceivedFields& f);

// "Return-Path: <reverse_path>" CRLF; "<>" for the null reverse path.
// `reverse_path` is the MAIL FROM mailbox as accepted by ParsePath (no CR,
// LF or other controls).
std::string FormatReturnPath(std::string_view reverse_path);

// Stands in for the date when the driver supplies no clock, so the header
// stays syntactically valid (RFC 5322 requires the date-time).
inline constexpr std::string_view kFallbackDate = "Thu, 1 Jan 1970 00:00:00 +0000";

}  // namespace porcupine::smtp
