// SEARCH program parsing and three-valued evaluation (search.h).
#include "protocol/imap/search.h"

#include <gtest/gtest.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "protocol/imap/encode.h"

namespace porcupine::imap {
namespace {

// Tokens from a simple space-separated program: "(" / ")" open and close
// lists, "\"x y\"" is a quoted string.
std::vector<Token> Tokens(std::string_view text) {
  std::vector<std::vector<Token>> stack(1);
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == ' ') {
      ++i;
    } else if (c == '(') {
      stack.emplace_back();
      ++i;
    } else if (c == ')') {
      Token list;
      list.kind = Token::Kind::kList;
      list.items = std::move(stack.back());
      stack.pop_back();
      stack.back().push_back(std::move(list));
      ++i;
    } else if (c == '"') {
      size_t end = text.find('"', i + 1);
      Token t;
      t.kind = Token::Kind::kQuoted;
      t.text = std::string(text.substr(i + 1, end - i - 1));
      stack.back().push_back(std::move(t));
      i = end + 1;
    } else {
      size_t end = std::min(text.find_first_of(" ()", i), text.size());
      Token t;
      t.text = std::string(text.substr(i, end - i));
      stack.back().push_back(std::move(t));
      i = end;
    }
  }
  return std::move(stack[0]);
}

std::optional<SearchProgram> Parse(std::string_view text, SearchParseError* error = nullptr) {
  SearchParseError e;
  std::string message;
  std::optional<SearchProgram> p = ParseSearch(Tokens(text), &e, &message);
  if (error != nullptr) *error = e;
  return p;
}

struct Fixture {
  std::vector<MessageInfo> messages;
  std::vector<std::unique_ptr<mime::ParsedMessage>> bodies;
  std::vector<bool> recent;  // SearchTarget::recent, by index (default false)

  void Add(std::vector<std::string> flags, int64_t day, uint64_t size, std::string body = "") {
    MessageInfo m;
    m.uid = static_cast<uint32_t>(messages.empty() ? 10 : messages.back().uid + 10);
    m.flags = std::move(flags);
    m.internal_date_ms = day * 86400000 + 3600000;
    m.size = size;
    messages.push_back(m);
    bodies.push_back(mime::ParsedMessage::Parse(body));
  }

  // Sequence numbers of the matches; the body is used only when needed.
  std::string Run(std::string_view program) {
    std::optional<SearchProgram> p = Parse(program);
    if (!p) return "parse error";
    std::string out;
    for (size_t i = 0; i < messages.size(); ++i) {
      SearchTarget t{&messages[i], static_cast<uint32_t>(i + 1),
                     static_cast<uint32_t>(messages.size()), messages.back().uid,
                     i < recent.size() && recent[i]};
      Match m = Evaluate(p->root, t, nullptr);
      if (m == Match::kNeedBody) {
        EXPECT_TRUE(p->needs_body) << program;
        m = Evaluate(p->root, t, bodies[i].get());
        EXPECT_NE(m, Match::kNeedBody);
      }
      if (m == Match::kYes) out += (out.empty() ? "" : " ") + std::to_string(i + 1);
    }
    return out;
  }
};

TEST(SearchParseTest, CharsetAndErrors) {
  SearchParseError e;
  EXPECT_TRUE(Parse("CHARSET UTF-8 ALL", &e));
  EXPECT_TRUE(Parse("charset \"us-ascii\" ALL", &e));
  EXPECT_FALSE(Parse("CHARSET ISO-8859-1 ALL", &e));
  EXPECT_EQ(e, SearchParseError::kBadCharset);
  for (const char* bad : {"", "CHARSET", "CHARSET UTF-8", "BOGUS", "FROM", "HEADER X", "OR ALL",
                          "NOT", "SINCE", "SINCE 1-Foo-2020", "LARGER x", "LARGER -1", "UID",
                          "UID a", "()", "KEYWORD \\Recent", "1:x", "(ALL"}) {
    EXPECT_FALSE(Parse(bad, &e)) << bad;
    EXPECT_EQ(e, SearchParseError::kSyntax) << bad;
  }
}

TEST(SearchParseTest, DepthIsBounded) {
  std::string deep;
  for (int i = 0; i < 1000; ++i) deep += "NOT ";
  EXPECT_FALSE(Parse(deep + "ALL"));
  std::string nested(200, '(');
  EXPECT_FALSE(Parse(nested + "ALL" + std::string(200, ')')));
  std::string ok;
  for (int i = 0; i < 20; ++i) ok += "NOT ";
  EXPECT_TRUE(Parse(ok + "ALL"));
}

TEST(SearchParseTest, NeedsBodyOnlyForMessageKeys) {
  EXPECT_FALSE(
      Parse("SEEN LARGER 5 UID 1:* 2 SINCE 1-Jan-2020 NOT OR DRAFT KEYWORD x")->needs_body);
  for (const char* p : {"FROM a", "TO a", "CC a", "BCC a", "SUBJECT a", "BODY a", "TEXT a",
                        "HEADER X a", "SENTON 1-Jan-2020", "SENTBEFORE 1-Jan-2020",
                        "SENTSINCE 1-Jan-2020", "NOT (SEEN BODY x)"}) {
    EXPECT_TRUE(Parse(p)->needs_body) << p;
  }
}

TEST(SearchEvalTest, FlagsSizesDatesNumbers) {
  Fixture f;
  f.Add({"\\Seen"}, 100, 1000);
  f.Add({"\\Seen", "\\Flagged"}, 101, 2000);
  f.Add({"\\Deleted", "$Work"}, 102, 3000);
  f.Add({"\\Answered", "\\Draft"}, 103, 4000);
  EXPECT_EQ(f.Run("ALL"), "1 2 3 4");
  EXPECT_EQ(f.Run("SEEN"), "1 2");
  EXPECT_EQ(f.Run("UNSEEN"), "3 4");
  EXPECT_EQ(f.Run("ANSWERED"), "4");
  EXPECT_EQ(f.Run("UNANSWERED DRAFT"), "");
  EXPECT_EQ(f.Run("DELETED"), "3");
  EXPECT_EQ(f.Run("UNDELETED UNDRAFT UNFLAGGED"), "1");
  EXPECT_EQ(f.Run("KEYWORD $work"), "3");
  EXPECT_EQ(f.Run("UNKEYWORD $Work"), "1 2 4");
  EXPECT_EQ(f.Run("RECENT"), "");
  EXPECT_EQ(f.Run("NEW"), "");
  EXPECT_EQ(f.Run("OLD"), "1 2 3 4");
  f.recent = {false, true, true, false};
  EXPECT_EQ(f.Run("RECENT"), "2 3");
  EXPECT_EQ(f.Run("NEW"), "3");  // recent and unseen
  EXPECT_EQ(f.Run("OLD"), "1 4");
  EXPECT_EQ(f.Run("NOT NEW"), "1 2 4");
  EXPECT_EQ(f.Run("OR NEW SEEN"), "1 2 3");
  f.recent.clear();
  EXPECT_EQ(f.Run("LARGER 2000"), "3 4");
  EXPECT_EQ(f.Run("SMALLER 2000"), "1");
  // Day 100 is 1970-04-11.
  EXPECT_EQ(f.Run("ON 11-Apr-1970"), "1");
  EXPECT_EQ(f.Run("SINCE 12-Apr-1970"), "2 3 4");
  EXPECT_EQ(f.Run("BEFORE 12-Apr-1970"), "1");
  // The day as written in the date's zone: 01:00 UTC is the day before at -0200.
  f.messages[0].internal_date_zone = -120;
  EXPECT_EQ(f.Run("ON 10-Apr-1970"), "1");
  EXPECT_EQ(f.Run("BEFORE 11-Apr-1970"), "1");
  f.messages[0].internal_date_zone = 0;
  EXPECT_EQ(f.Run("2:3"), "2 3");
  EXPECT_EQ(f.Run("3:*"), "3 4");
  EXPECT_EQ(f.Run("*"), "4");
  EXPECT_EQ(f.Run("UID 20,40"), "2 4");
  EXPECT_EQ(f.Run("UID 35:*"), "4");
  EXPECT_EQ(f.Run("UID 100:*"), "4");  // n:* always includes the last
  EXPECT_EQ(f.Run("OR SEEN DELETED"), "1 2 3");
  EXPECT_EQ(f.Run("NOT SEEN"), "3 4");
  EXPECT_EQ(f.Run("(SEEN FLAGGED)"), "2");
  EXPECT_EQ(f.Run("OR (SEEN FLAGGED) (DRAFT ANSWERED)"), "2 4");
  EXPECT_EQ(f.Run("NOT (OR 1 2)"), "3 4");
}

TEST(SearchEvalTest, MessageKeys) {
  Fixture f;
  f.Add({}, 0, 0,
        "From: Ann Example <ann@example.org>\r\nTo: bob@example.org\r\nSubject: Quarterly "
        "Report\r\nX-Priority: 1\r\nDate: Mon, 4 Mar 2024 23:30:00 -0500\r\n\r\nNumbers are "
        "UP.\r\n");
  f.Add({"\\Seen"}, 0, 0,
        "From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.org>\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?="
        "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
        "quoted-printable\r\n\r\nSch=C3=B6ne Gr=C3=BC=C3=9Fe\r\n");
  EXPECT_EQ(f.Run("FROM ann"), "1");
  EXPECT_EQ(f.Run("FROM \"ann example\""), "1");
  EXPECT_EQ(f.Run("FROM example.org"), "1 2");
  EXPECT_EQ(f.Run("TO BOB"), "1");
  EXPECT_EQ(f.Run("CC bob"), "");
  EXPECT_EQ(f.Run("SUBJECT report"), "1");
  EXPECT_EQ(f.Run("SUBJECT gr\xC3\xBC"), "2");
  EXPECT_EQ(f.Run("FROM J\xC3\x9C"), "2");
  EXPECT_EQ(f.Run("BODY \"numbers are up\""), "1");
  EXPECT_EQ(f.Run("BODY sch\xC3\xB6"), "2");
  EXPECT_EQ(f.Run("BODY Subject"), "");
  EXPECT_EQ(f.Run("TEXT subject"), "1 2");
  EXPECT_EQ(f.Run("TEXT numbers"), "1");
  EXPECT_EQ(f.Run("HEADER x-priority \"\""), "1");
  EXPECT_EQ(f.Run("HEADER X-Priority 2"), "");
  EXPECT_EQ(f.Run("SENTON 4-Mar-2024"), "1");  // the header's own day, zone disregarded
  EXPECT_EQ(f.Run("SENTSINCE 5-Mar-2024"), "");
  EXPECT_EQ(f.Run("SENTBEFORE 5-Mar-2024"), "1");
  EXPECT_EQ(f.Run("NOT SENTBEFORE 5-Mar-2024"), "2");  // no Date: matches no SENT* key
}

TEST(SearchEvalTest, CheapKeysDecideWithoutTheBody) {
  std::optional<SearchProgram> p = Parse("SEEN BODY x");
  ASSERT_TRUE(p);
  MessageInfo unseen;
  SearchTarget t{&unseen, 1, 1, 1, false};
  EXPECT_EQ(Evaluate(p->root, t, nullptr), Match::kNo);
  MessageInfo seen;
  seen.flags = {"\\Seen"};
  SearchTarget t2{&seen, 1, 1, 1, false};
  EXPECT_EQ(Evaluate(p->root, t2, nullptr), Match::kNeedBody);
  std::optional<SearchProgram> q = Parse("OR SEEN BODY x");
  EXPECT_EQ(Evaluate(q->root, t2, nullptr), Match::kYes);
  EXPECT_EQ(Evaluate(q->root, t, nullptr), Match::kNeedBody);
  std::optional<SearchProgram> r = Parse("NOT BODY x");
  EXPECT_EQ(Evaluate(r->root, t, nullptr), Match::kNeedBody);
}

}  // namespace
}  // namespace porcupine::imap
