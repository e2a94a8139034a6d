#include "acme/plan.h"

#include <algorithm>
#include <cctype>

namespace porcupine::acme {
namespace {

bool Covers(const std::vector<std::string>& have, const std::vector<std::string>& want) {
  for (const std::string& d : want) {
    if (std::find(have.begin(), have.end(), d) == have.end()) return false;
  }
  return true;
}

// Why a new certificate is needed, or "" when the stored one will do.
std::string OrderReason(const PlanInput& in) {
  if (in.not_after == 0) return "no certificate stored";
  if (!Covers(in.cert_domains, in.domains)) return "the stored certificate lacks a domain";
  if (in.now >= in.not_after) return "the stored certificate has expired";
  if (in.now >= in.not_after - in.renew_before) {
    return "renewal due: expires in " + std::to_string((in.not_after - in.now) / 86400) + " days";
  }
  return "";
}

}  // namespace

PlanDecision Plan(const PlanInput& in) {
  PlanDecision d;
  // A stored certificate is better than the placeholder or an older one even
  // while a renewal is due, as long as it is valid.
  d.install = in.stored_differs && in.not_after > in.now;
  std::string why = OrderReason(in);
  if (why.empty()) return d;
  d.reason = why;
  d.order = in.orderer && in.now >= in.retry_at;
  return d;
}

std::vector<std::string> DomainsToCertify(const std::vector<std::string>& configured,
                                          const std::string& fallback) {
  std::vector<std::string> out =
      configured.empty() ? std::vector<std::string>{fallback} : configured;
  for (std::string& d : out) {
    for (char& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!d.empty() && d.back() == '.') d.pop_back();
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

int64_t RetryDelay(int failures, int64_t base, int64_t max) {
  int64_t delay = std::max<int64_t>(base, 1);
  for (int i = 1; i < failures && delay < max; ++i) delay *= 2;
  return std::min(delay, max);
}

}  // namespace porcupine::acme
