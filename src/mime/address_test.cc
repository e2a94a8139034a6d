#include "mime/address.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mime/header.h"

namespace porcupine::mime {
namespace {

std::string Nstr(const std::optional<std::string>& s) { return s ? "\"" + *s + "\"" : "NIL"; }

// The IMAP envelope form of a parsed list, without the outer parentheses.
std::string Imap(const std::vector<AddressItem>& items) {
  std::string out;
  for (const AddressItem& a : items) {
    out +=
        "(" + Nstr(a.name) + " " + Nstr(a.route) + " " + Nstr(a.mailbox) + " " + Nstr(a.host) + ")";
  }
  return out;
}

struct AddressCase {
  std::string input;
  std::string expected;  // with fill_missing, as the envelope uses
};

TEST(MimeAddress, ParsesAndRecoversLikeDovecot) {
  const std::vector<AddressCase> cases = {
      {"joe@example.org", R"((NIL NIL "joe" "example.org"))"},
      {"\"joe q\"@example.org", R"((NIL NIL "joe q" "example.org"))"},
      {"\"\"@example.org", R"((NIL NIL "" "example.org"))"},
      {"Joe Q. Public <joe@example.org>", R"(("Joe Q. Public" NIL "joe" "example.org"))"},
      {"\"Public, Joe\" <joe@example.org>", R"(("Public, Joe" NIL "joe" "example.org"))"},
      {"\"say \\\"hi\\\"\" <joe@example.org>", R"(("say "hi"" NIL "joe" "example.org"))"},
      {"Joe \"Q\" Public <joe@example.org>", R"(("Joe Q Public" NIL "joe" "example.org"))"},
      {"\"\" <joe@example.org>", R"((NIL NIL "joe" "example.org"))"},
      {"joe@example.org (Joe Public)", R"(("Joe Public" NIL "joe" "example.org"))"},
      {"joe@example.org ()", R"((NIL NIL "joe" "example.org"))"},
      {"joe (Joe Public)", R"(("Joe Public" NIL "joe" "MISSING_DOMAIN"))"},
      {"<joe (c) @ (c) example . org>", R"((NIL NIL "joe" "example.org"))"},
      {"<@a.org,@b.org:joe@example.org>", R"((NIL "@a.org,@b.org" "joe" "example.org"))"},
      {"<@a.org@b.org:joe>", R"((NIL "@a.org,@b.org" "joe" "MISSING_DOMAIN"))"},
      {"joe@[192.0.2.1]", R"((NIL NIL "joe" "[192.0.2.1]"))"},
      // Broken input: Dovecot's recovery.
      {"joe", R"((NIL NIL "joe" "MISSING_DOMAIN"))"},
      {"joe@", R"((NIL NIL "joe" "MISSING_DOMAIN"))"},
      {"@example.org", R"((NIL NIL "MISSING_MAILBOX" "example.org"))"},
      {"Joe Public", R"(("Joe Public" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"},
      {"\"\"", R"(("" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"},
      {"<>", R"((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"},
      {"<@>", R"((NIL "INVALID_ROUTE" "MISSING_MAILBOX" "MISSING_DOMAIN"))"},
      {"<joe", R"((NIL NIL "joe" "SYNTAX_ERROR"))"},
      {"Joe <joe@example.org", R"(("Joe" NIL "joe" "SYNTAX_ERROR"))"},
      {"joe<example.org (Joe)", R"(("joe" NIL "example.org" "SYNTAX_ERROR"))"},
      {"j(unterminated", R"((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"},
      {"j(unterm\\inated", R"(("unterm" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"},
      {"u\"unterminated", R"((NIL NIL "u" "MISSING_DOMAIN"))"},
      {"u\"abc\r\n def", R"(("u abc" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))"},
      {"joe@example.", R"((NIL NIL "joe" "MISSING_DOMAIN"))"},
      {"joe@.example", R"((NIL NIL "joe" "MISSING_DOMAIN"))"},
      {"j..oe.@example.org", R"((NIL NIL "j..oe." "example.org"))"},
      // Lists and groups.
      {"a@x.org, b@y.org ,\r\n c@z.org",
       R"((NIL NIL "a" "x.org")(NIL NIL "b" "y.org")(NIL NIL "c" "z.org"))"},
      {"undisclosed-recipients:;", R"((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))"},
      {"team: a@x.org, B <b@y.org>;, c@z.org",
       R"((NIL NIL "team" NIL)(NIL NIL "a" "x.org")("B" NIL "b" "y.org")(NIL NIL NIL NIL)(NIL NIL "c" "z.org"))"},
      {"\"g: <a@b>;,\" <joe@example.org>", R"(("g: <a@b>;," NIL "joe" "example.org"))"},
      {"", ""},
      {"  (only a comment)  ", ""},
  };
  for (const AddressCase& c : cases) {
    EXPECT_EQ(c.expected, Imap(ParseAddressList(c.input))) << c.input;
  }
}

TEST(MimeAddress, WithoutFillingAndWithALimit) {
  EXPECT_EQ(R"((NIL NIL "joe" ""))", Imap(ParseAddressList("joe", {.fill_missing = false})));
  EXPECT_EQ(R"((NIL NIL "a" "x")(NIL NIL "b" "x"))",
            Imap(ParseAddressList("a@x, b@x, c@x", {.max_addresses = 2})));
  std::string many;
  for (int i = 0; i < 50000; ++i) many += "a@b,";
  EXPECT_EQ(10000u, ParseAddressList(many).size());
}

TEST(MimeAddress, ContentParametersMergeRfc2231LikeDovecot) {
  std::vector<MimeParam> params = ParseMimeParams(
      "; z*=utf-8''%C3%A9; name*1=\"two\"; plain=x; name*0=one; t*0*=us-ascii'en'a; t*1=b%;"
      " gap*0=a; gap*2=c");
  std::vector<std::string> got;
  for (const MimeParam& p : params) got.push_back(p.name + "=" + p.value);
  EXPECT_EQ((std::vector<std::string>{"plain=x", "gap*0=a", "gap*2=c", "name=onetwo",
                                      "t*=us-ascii'en'ab%25", "z*=utf-8''%C3%A9"}),
            got);
}

}  // namespace
}  // namespace porcupine::mime
