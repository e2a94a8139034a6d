// FETCH item parsing and rendering (fetch.h), table-driven.
#include "protocol/imap/fetch.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace porcupine::imap {
namespace {

Token Atom(std::string text) {
  Token t;
  t.text = std::move(text);
  return t;
}

Token List(std::vector<Token> items) {
  Token t;
  t.kind = Token::Kind::kList;
  t.items = std::move(items);
  return t;
}

std::vector<std::string> Labels(const FetchSpec& spec) {
  std::vector<std::string> out;
  for (const FetchItem& i : spec.items) {
    out.push_back(i.kind == FetchItem::Kind::kSection ? i.label : std::to_string(int(i.kind)));
  }
  return out;
}

TEST(FetchSectionTest, ValidSections) {
  struct Case {
    const char* text;
    std::vector<uint32_t> part;
    mime::Section::Kind kind;
    std::vector<std::string> fields;
    const char* label;
  };
  using K = mime::Section::Kind;
  const Case kCases[] = {
      {"", {}, K::kAll, {}, ""},
      {"1", {1}, K::kAll, {}, "1"},
      {"1.2.3", {1, 2, 3}, K::kAll, {}, "1.2.3"},
      {"header", {}, K::kHeader, {}, "HEADER"},
      {"TEXT", {}, K::kText, {}, "TEXT"},
      {"2.MIME", {2}, K::kMime, {}, "2.MIME"},
      {"4.1.HEADER", {4, 1}, K::kHeader, {}, "4.1.HEADER"},
      {"HEADER.FIELDS (From to)", {}, K::kHeaderFields, {"From", "to"}, "HEADER.FIELDS (FROM TO)"},
      {"1.HEADER.FIELDS.NOT (\"X-A\"  Y)",
       {1},
       K::kHeaderFieldsNot,
       {"X-A", "Y"},
       "1.HEADER.FIELDS.NOT (X-A Y)"},
  };
  for (const Case& c : kCases) {
    std::string label;
    std::optional<mime::Section> s = ParseSection(c.text, &label);
    ASSERT_TRUE(s) << c.text;
    EXPECT_EQ(s->part, c.part) << c.text;
    EXPECT_EQ(s->kind, c.kind) << c.text;
    EXPECT_EQ(s->fields, c.fields) << c.text;
    EXPECT_EQ(label, c.label) << c.text;
  }
}

TEST(FetchSectionTest, InvalidSections) {
  for (const char* bad :
       {"0", "1.", ".1", "MIME", "1.2.", "BOGUS", "HEADER.FIELDS", "HEADER.FIELDS ()",
        "HEADER.FIELDS (a:b)", "HEADER x", "1.TEXT.2", "99999999999", "HEADER.FIELDS (\"a)"}) {
    std::string label;
    EXPECT_FALSE(ParseSection(bad, &label)) << bad;
  }
}

TEST(FetchSpecTest, MacrosAndItems) {
  std::string error;
  std::optional<FetchSpec> all = ParseFetchSpec(Atom("all"), &error);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->items.size(), 4u);
  EXPECT_TRUE(all->needs_body);  // ENVELOPE
  std::optional<FetchSpec> fast = ParseFetchSpec(Atom("FAST"), &error);
  ASSERT_TRUE(fast);
  EXPECT_EQ(fast->items.size(), 3u);
  EXPECT_FALSE(fast->needs_body);
  EXPECT_TRUE(fast->has_flags);
  std::optional<FetchSpec> full = ParseFetchSpec(Atom("Full"), &error);
  ASSERT_TRUE(full);
  EXPECT_EQ(full->items.size(), 5u);

  std::optional<FetchSpec> s =
      ParseFetchSpec(List({Atom("UID"), Atom("body.peek[HEADER]<0.10>"), Atom("BODY[]"),
                           Atom("RFC822.HEADER"), Atom("RFC822.TEXT"), Atom("uid")}),
                     &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(Labels(*s), (std::vector<std::string>{"6", "BODY[HEADER]<0>", "BODY[]", "RFC822.HEADER",
                                                  "RFC822.TEXT"}));
  EXPECT_TRUE(s->has_uid);
  EXPECT_TRUE(s->sets_seen);
  EXPECT_TRUE(s->items[1].peek);
  EXPECT_EQ(s->items[1].origin, 0u);
  EXPECT_EQ(s->items[1].count, 10u);
  EXPECT_TRUE(s->items[3].peek);   // RFC822.HEADER never sets \Seen
  EXPECT_FALSE(s->items[4].peek);  // RFC822.TEXT does

  std::optional<FetchSpec> peek = ParseFetchSpec(Atom("BODY.PEEK[TEXT]"), &error);
  ASSERT_TRUE(peek);
  EXPECT_FALSE(peek->sets_seen);
  EXPECT_TRUE(peek->needs_body);
}

TEST(FetchSpecTest, Errors) {
  std::string error;
  for (const Token& bad :
       {Atom("BOGUS"), List({}), List({Atom("FLAGS"), Atom("ALL")}), Atom("BODY[1."),
        Atom("BODY.PEEK"), Atom("BODY[]<1>"), Atom("BODY[]<1.0>"), Atom("BODY[]x"),
        Atom("BINARY[]"), List({List({Atom("FLAGS")})})}) {
    error.clear();
    EXPECT_FALSE(ParseFetchSpec(bad, &error)) << bad.text;
    EXPECT_FALSE(error.empty());
  }
}

TEST(FetchRenderTest, ItemsWithoutBody) {
  MessageInfo info{7, "id", {"\\Seen", "$X"}, 1709645400000, 1234};
  std::string error;
  std::optional<FetchSpec> spec =
      ParseFetchSpec(List({Atom("FLAGS"), Atom("INTERNALDATE"), Atom("RFC822.SIZE")}), &error);
  ASSERT_TRUE(spec);
  EXPECT_EQ(RenderFetch(3, info, *spec, nullptr, true, false),
            "* 3 FETCH (UID 7 FLAGS (\\Seen $X) INTERNALDATE \"05-Mar-2024 13:30:00 +0000\" "
            "RFC822.SIZE 1234)\r\n");
  std::optional<FetchSpec> uid = ParseFetchSpec(Atom("UID"), &error);
  ASSERT_TRUE(uid);
  EXPECT_EQ(RenderFetch(1, info, *uid, nullptr, true, true),
            "* 1 FETCH (UID 7 FLAGS (\\Seen $X))\r\n");
}

TEST(FetchRenderTest, SectionsAndPartials) {
  auto parsed = mime::ParsedMessage::Parse("Subject: x\r\n\r\nhello world\r\n");
  MessageInfo info{1, "id", {}, 0, parsed->raw().size()};
  std::string error;
  std::optional<FetchSpec> spec = ParseFetchSpec(
      List({Atom("BODY.PEEK[]<6.4>"), Atom("BODY.PEEK[]<100.4>"), Atom("RFC822")}), &error);
  ASSERT_TRUE(spec);
  EXPECT_EQ(RenderFetch(1, info, *spec, parsed.get(), false, false),
            "* 1 FETCH (BODY[]<6> {4}\r\nt: x BODY[]<100> \"\" RFC822 {27}\r\n"
            "Subject: x\r\n\r\nhello world\r\n)\r\n");
  FetchItem whole = spec->items[2];
  EXPECT_EQ(SectionData(whole, *parsed), parsed->raw());
}

}  // namespace
}  // namespace porcupine::imap
