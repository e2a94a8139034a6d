#include "mail/recipients.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace porcupine::mail {
namespace {

RecipientRules Rules(std::string postmaster = "admin@example.test") {
  return {{"example.test", "second.test"}, std::move(postmaster)};
}

TEST(RecipientRulesTest, DefaultPostmasterIsOfTheFirstDomain) {
  EXPECT_EQ(DefaultPostmaster({"example.test", "second.test"}), "postmaster@example.test");
  EXPECT_EQ(DefaultPostmaster({}), "");
}

TEST(RecipientRulesTest, Table) {
  struct Case {
    const char* address;
    std::optional<std::string> mailbox;
  };
  const Case cases[] = {
      // RFC 5321 §4.5.1: every local domain's postmaster, any case, and the
      // bare form of §4.1.1.3, reach the one configured mailbox.
      {"postmaster", "admin@example.test"},
      {"PostMaster", "admin@example.test"},
      {"postmaster@example.test", "admin@example.test"},
      {"POSTMASTER@Second.Test", "admin@example.test"},
      // Someone else's postmaster is not ours (the caller refuses the relay).
      {"postmaster@elsewhere.test", "postmaster@elsewhere.test"},
      // Everyone else: the canonical address, local or not.
      {"Alice@Example.Test", "alice@example.test"},
      {"postmaster2@example.test", "postmaster2@example.test"},
      {"post@second.test", "post@second.test"},
      {"bob@elsewhere.test", "bob@elsewhere.test"},
      // Not mailboxes: only postmaster may come without a domain.
      {"alice", std::nullopt},
      {"postmasterx", std::nullopt},
      {"", std::nullopt},
      {"bad address@example.test", std::nullopt},
  };
  const RecipientRules rules = Rules();
  for (const Case& c : cases) {
    EXPECT_EQ(ResolveRecipient(rules, c.address), c.mailbox) << c.address;
  }
}

TEST(RecipientRulesTest, ThePostmasterMailboxMayBeThePostmasterItself) {
  const RecipientRules rules = Rules(DefaultPostmaster({"example.test", "second.test"}));
  EXPECT_EQ(ResolveRecipient(rules, "postmaster@second.test"), "postmaster@example.test");
  EXPECT_EQ(ResolveRecipient(rules, "Postmaster@example.test"), "postmaster@example.test");
}

}  // namespace
}  // namespace porcupine::mail
