#include "protocol/smtp/queue_id.h"

namespace porcupine::smtp {
namespace {

void AppendHex(std::string& out, uint64_t v, int digits) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out.push_back(kDigits[(v >> (4 * i)) & 0xf]);
}

}  // namespace

std::string FormatSessionId(uint64_t hlc, uint32_t node) {
  std::string out;
  out.reserve(kSessionIdDigits);
  AppendHex(out, hlc, 16);
  AppendHex(out, node, 8);
  return out;
}

}  // namespace porcupine::smtp
