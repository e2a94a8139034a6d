#include "protocol/smtp/received.h"

namespace porcupine::smtp {
namespace {

// TCP-info per RFC 5321 §4.4: an address literal, "IPv6:" tagged for v6.
std::string PeerLiteral(std::string_view ip) {
  if (ip.empty()) return "unknown";
  std::string out = "[";
  if (ip.find(':') != std::string_view::npos) out += "IPv6:";
  out += ip;
  out += ']';
  return out;
}

}  // namespace

std::string_view ReceivedProtocol(bool ehlo, bool smtputf8, bool tls, bool auth) {
  if (!ehlo) return "SMTP";
  if (auth) {
    if (tls) return smtputf8 ? "UTF8SMTPSA" : "ESMTPSA";
    return smtputf8 ? "UTF8SMTPA" : "ESMTPA";
  }
  if (tls) return smtputf8 ? "UTF8SMTPS" : "ESMTPS";
  return smtputf8 ? "UTF8SMTP" : "ESMTP";
}

std::string FormatReturnPath(std::string_view reverse_path) {
  std::string h = "Return-Path: <";
  h += reverse_path;
  h += ">\r\n";
  return h;
}

std::string FormatReceived(const ReceivedFields& f) {
  std::string h = "Received: from ";
  h += f.helo;
  h += " (";
  h += PeerLiteral(f.peer_ip);
  h += ")\r\n\t";
  if (!f.authenticated.empty()) {
    // A comment (RFC 5321 §4.4 allows CFWS before "by"); the identity
    // only, never anything of the credentials.
    h += "(authenticated as ";
    h += f.authenticated;
    h += ")\r\n\t";
  }
  h += "by ";
  h += f.hostname;
  h += " (porcupine) with ";
  h += f.protocol;
  h += " id ";
  h += f.id;
  if (!f.recipient.empty()) {
    h += "\r\n\tfor <";
    h += f.recipient;
    h += ">; ";
  } else {
    h += ";\r\n\t";
  }
  h += f.date.empty() ? kFallbackDate : f.date;
  h += "\r\n";
  return h;
}

}  // namespace porcupine::smtp
