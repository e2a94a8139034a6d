// Test-only: a stand-in for the backend's SCRAM-SHA-256 exchange (the real
// one is node/scram.h, GNU SASL) for the engines' tests. A first response
// naming n=alice gets a challenge; n=old is an account without SCRAM
// secrets; anything else that is no base64 of "n,,n=..." is malformed; a
// final response with p=good succeeds as alice@example.test (data "v=ok"),
// any other fails. Header-only so the library never links it.
#pragma once

#include <string>

#include "protocol/common/sasl.h"

namespace porcupine::protocol::testing {

inline SaslReply FakeScram(const SaslStep& step) {
  using Kind = SaslReply::Kind;
  std::string m;
  SaslReply r;
  r.kind = Kind::kFailure;
  if (!DecodeBase64(step.response, &m)) {
    r.status = Status::InvalidArgument("base64");
  } else if (step.first && m.find("n=old") != std::string::npos) {
    r.status = Status::FailedPrecondition("no SCRAM secrets");
  } else if (step.first && m.rfind("n,,n=", 0) == 0) {
    r.kind = Kind::kChallenge;
    r.data = EncodeBase64("r=nonce,s=c2FsdA==,i=4096");
  } else if (step.first) {
    r.status = Status::InvalidArgument("malformed");
  } else if (m.find("p=good") != std::string::npos) {
    r.kind = Kind::kSuccess;
    r.user = "alice@example.test";
    r.data = EncodeBase64("v=ok");
  } else {
    r.status = Status::PermissionDenied("bad proof");
  }
  return r;
}

}  // namespace porcupine::protocol::testing
