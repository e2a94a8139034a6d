#include "protocol/common/sasl.h"

#include <sodium.h>

namespace porcupine::protocol {

void Wipe(std::string* s) {
  sodium_memzero(s->data(), s->size());
  s->clear();
}

bool DecodeBase64(std::string_view base64, std::string* out) {
  out->assign(base64.size() / 4 * 3 + 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  int rc = sodium_base642bin(reinterpret_cast<unsigned char*>(out->data()), out->size(),
                             base64.data(), base64.size(), /*ignore=*/nullptr, &len, &end,
                             sodium_base64_VARIANT_ORIGINAL);
  if (rc != 0 || end != base64.data() + base64.size()) {
    Wipe(out);
    return false;
  }
  out->resize(len);
  return true;
}

std::string EncodeBase64(std::string_view bytes) {
  const size_t cap = sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string out(cap, '\0');
  sodium_bin2base64(out.data(), cap, reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(cap - 1);  // the terminating NUL
  return out;
}

SaslPlainError DecodeSaslPlain(std::string_view base64, SaslPlain* creds) {
  std::string decoded;
  if (!DecodeBase64(base64, &decoded)) return SaslPlainError::kBase64;
  SaslPlainError result = SaslPlainError::kNone;
  std::string_view msg = decoded;
  const size_t first = msg.find('\0');
  const size_t second = first == msg.npos ? first : msg.find('\0', first + 1);
  if (second == msg.npos || msg.find('\0', second + 1) != msg.npos) {
    result = SaslPlainError::kMalformed;
  } else {
    std::string_view authzid = msg.substr(0, first);
    std::string_view user = msg.substr(first + 1, second - first - 1);
    std::string_view password = msg.substr(second + 1);
    if (user.empty() || password.empty()) {
      result = SaslPlainError::kMalformed;
    } else if (!authzid.empty() && authzid != user) {
      result = SaslPlainError::kAuthzid;
    } else {
      creds->user = std::string(user);
      creds->password = std::string(password);
    }
  }
  Wipe(&decoded);
  return result;
}

}  // namespace porcupine::protocol
