// CommandReader and sequence-set tests. Every reader case is table-driven and
// replayed with its input split at every fragment size from the whole input
// down to one byte; all splits must produce the same events.
#include "protocol/imap/parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace porcupine::imap {
namespace {

using namespace std::string_literals;
using Events = std::vector<std::string>;

std::string Describe(const Token& t) {
  switch (t.kind) {
    case Token::Kind::kAtom:
      return t.text;
    case Token::Kind::kQuoted: {
      std::string out = "\"";
      for (char c : t.text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      return out + "\"";
    }
    case Token::Kind::kLiteral:
      return "{" + std::string(t.literal_plus ? "+" : "") + t.text + "}";
    case Token::Kind::kList: {
      std::string out = "(";
      for (size_t i = 0; i < t.items.size(); ++i) {
        out += (i ? " " : "") + Describe(t.items[i]);
      }
      return out + ")";
    }
  }
  return "?";
}

std::string Describe(const Command& c) {
  std::string out = c.tag + " " + c.name + (c.uid ? " uid" : "");
  for (const Token& t : c.args) out += " " + Describe(t);
  return out;
}

// Raw-line mode as a session would drive it: on after IDLE or AUTHENTICATE,
// off after the raw line "DONE" or "*".
void DriveRawMode(CommandReader& r, CommandReader::Event e) {
  if (e == CommandReader::Event::kCommand) {
    const std::string& n = r.command().name;
    if (n == "IDLE" || n == "AUTHENTICATE") r.SetRawLineMode(true);
  } else if (e == CommandReader::Event::kRawLine) {
    if (r.raw_line() == "DONE" || r.raw_line() == "*") r.SetRawLineMode(false);
  }
}

// Drains events until the reader needs input. Returns false after kFatal.
bool Drain(CommandReader& r, Events* out) {
  for (;;) {
    CommandReader::Event e = r.Next();
    switch (e) {
      case CommandReader::Event::kNeedInput:
        return true;
      case CommandReader::Event::kCommand:
        out->push_back("CMD " + Describe(r.command()));
        break;
      case CommandReader::Event::kContinue:
        out->push_back("CONTINUE");
        break;
      case CommandReader::Event::kError:
        out->push_back("ERROR " + r.error_tag() + ": " + r.error());
        break;
      case CommandReader::Event::kFatal:
        out->push_back("FATAL " + r.error_tag() + ": " + r.error());
        return false;
      case CommandReader::Event::kRawLine:
        out->push_back("RAW " + r.raw_line());
        break;
    }
    DriveRawMode(r, e);
  }
}

Events Run(std::string_view input, size_t chunk, const ParserLimits& limits,
           CommandReader::LiteralCheck check) {
  CommandReader r(limits);
  r.SetLiteralCheck(check);
  Events events;
  for (size_t pos = 0; pos < input.size(); pos += chunk) {
    r.Feed(input.substr(pos, chunk));
    if (!Drain(r, &events)) return events;
  }
  Drain(r, &events);
  return events;
}

// The events for `input`, checked to be identical at every split size.
Events Replay(std::string_view input, const ParserLimits& limits = {},
              CommandReader::LiteralCheck check = nullptr) {
  Events whole = Run(input, std::max<size_t>(input.size(), 1), limits, check);
  for (size_t chunk = input.size(); chunk >= 1; --chunk) {
    Events split = Run(input, chunk, limits, check);
    if (split != whole) {
      ADD_FAILURE() << "split at " << chunk << " bytes differs for input: " << input;
      EXPECT_EQ(split, whole);
      break;
    }
  }
  return whole;
}

struct Case {
  const char* name;
  std::string input;
  Events expected;
  ParserLimits limits = {};
  CommandReader::LiteralCheck check = nullptr;
};

void RunCases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(Replay(c.input, c.limits, c.check), c.expected);
  }
}

ParserLimits Limits(size_t max_line, uint64_t max_literal, size_t max_command, int max_depth = 32,
                    size_t max_tokens = 100000) {
  ParserLimits l;
  l.max_line = max_line;
  l.max_literal = max_literal;
  l.max_command = max_command;
  l.max_depth = max_depth;
  l.max_tokens = max_tokens;
  return l;
}

TEST(ParserTest, SimpleCommands) {
  RunCases({
      {"noop", "A1 NOOP\r\n", {"CMD A1 NOOP"}},
      {"name is upper-cased", "a1 noop\r\n", {"CMD a1 NOOP"}},
      {"args", "A1 LOGIN user pass\r\n", {"CMD A1 LOGIN user pass"}},
      {"pipelined",
       "A1 NOOP\r\nA2 CAPABILITY\r\nA3 SELECT INBOX\r\n",
       {"CMD A1 NOOP", "CMD A2 CAPABILITY", "CMD A3 SELECT INBOX"}},
      {"unusual tag chars", "a.b-c]1 NOOP\r\n", {"CMD a.b-c]1 NOOP"}},
      {"trailing space", "A1 NOOP \r\n", {"CMD A1 NOOP"}},
      {"empty lines ignored", "\r\n\r\nA1 NOOP\r\n\r\n", {"CMD A1 NOOP"}},
      {"incomplete line", "A1 NOOP", {}},
      {"flags and patterns",
       "A1 STORE 1:* +FLAGS.SILENT (\\Seen \\Deleted $Junk)\r\nA2 LIST \"\" %/*\r\n",
       {"CMD A1 STORE 1:* +FLAGS.SILENT (\\Seen \\Deleted $Junk)", "CMD A2 LIST \"\" %/*"}},
      {"8-bit atom", "A1 SELECT Entw\xc3\xbcrfe\r\n", {"CMD A1 SELECT Entw\xc3\xbcrfe"}},
      {"stray ] outside brackets", "A1 X a]b\r\n", {"CMD A1 X a]b"}},
      {"line of exactly max_line", "A1 X 12345\r\n", {"CMD A1 X 12345"}, Limits(12, 1024, 4096)},
  });
}

// RFC 3501 §2.2: lines end in CRLF. A bare LF ends a line (nothing after it
// is taken as the same command) but the line is refused: BAD for a command,
// an error for a raw line. Literal octets are data and may hold bare LFs.
TEST(ParserTest, BareLfEndsALineThatIsRefused) {
  RunCases({
      {"command", "A1 NOOP\n", {"ERROR A1: line must end with CRLF"}},
      {"the command after it runs",
       "A1 NOOP\r\nA2 LOGIN a b\nA3 SELECT INBOX\r\n",
       {"CMD A1 NOOP", "ERROR A2: line must end with CRLF", "CMD A3 SELECT INBOX"}},
      {"empty line", "\r\n\nA1 NOOP\r\n", {"ERROR : line must end with CRLF", "CMD A1 NOOP"}},
      {"bare CR then LF is no CRLF", "A1 NOOP\r\r\n", {"ERROR A1: invalid command name"}},
      {"line of max_line",
       "A1 X 123456\n",
       {"ERROR A1: line must end with CRLF"},
       Limits(12, 1024, 4096)},
      {"sync literal announced: no continuation",
       "A1 APPEND INBOX {5}\nA2 NOOP\r\n",
       {"ERROR A1: line must end with CRLF", "CMD A2 NOOP"}},
      {"non-sync literal announced: its octets are skipped",
       "A1 APPEND INBOX {5+}\nA2 NO\r\nA3 NOOP\r\n",
       {"ERROR A1: line must end with CRLF", "CMD A3 NOOP"}},
      {"line after a literal",
       "A1 LOGIN {3}\r\nfoo bar\nA2 NOOP\r\n",
       {"CONTINUE", "ERROR A1: line must end with CRLF", "CMD A2 NOOP"}},
      {"literal octets may hold bare LFs",
       "A1 APPEND INBOX {8}\r\na\nb\r\nc\n\n\r\n",
       {"CONTINUE", "CMD A1 APPEND INBOX {a\nb\r\nc\n\n}"}},
      {"non-sync literal octets too",
       "A1 APPEND INBOX {4+}\r\n\n.\n\n\r\nA2 NOOP\r\n",
       {"CMD A1 APPEND INBOX {+\n.\n\n}", "CMD A2 NOOP"}},
      {"lines of a rejected command are skipped either way",
       "A1 X ) {3+}\r\nabc {1+}\nx\nA2 NOOP\r\n",
       {"ERROR A1: unexpected ')'", "CMD A2 NOOP"}},
      {"raw line",
       "A1 IDLE\r\nDONE\nDONE\r\nA2 NOOP\r\n",
       {"CMD A1 IDLE", "ERROR : line must end with CRLF", "RAW DONE", "CMD A2 NOOP"}},
  });
}

TEST(ParserTest, UidFolding) {
  RunCases({
      {"fetch", "A1 UID FETCH 1:* (FLAGS)\r\n", {"CMD A1 FETCH uid 1:* (FLAGS)"}},
      {"lower case", "A1 uid store 4 +FLAGS (\\Seen)\r\n", {"CMD A1 STORE uid 4 +FLAGS (\\Seen)"}},
      {"copy", "A1 UID COPY 1 Trash\r\n", {"CMD A1 COPY uid 1 Trash"}},
      {"move", "A1 UID MOVE 1 Trash\r\n", {"CMD A1 MOVE uid 1 Trash"}},
      {"search", "A1 UID SEARCH ALL\r\n", {"CMD A1 SEARCH uid ALL"}},
      {"expunge", "A1 UID EXPUNGE 1:3\r\n", {"CMD A1 EXPUNGE uid 1:3"}},
      {"unknown sub-command stays UID", "A1 UID NOOP\r\n", {"CMD A1 UID NOOP"}},
      {"bare UID", "A1 UID\r\n", {"CMD A1 UID"}},
      {"quoted sub-command not folded", "A1 UID \"FETCH\" 1\r\n", {"CMD A1 UID \"FETCH\" 1"}},
  });
  CommandReader r({});
  r.Feed("A1 UID FETCH 1 FLAGS\r\n");
  ASSERT_EQ(r.Next(), CommandReader::Event::kCommand);
  Command c = r.TakeCommand();
  EXPECT_TRUE(c.uid);
  EXPECT_EQ(c.name, "FETCH");
  ASSERT_EQ(c.args.size(), 2u);
  EXPECT_EQ(c.args[0].text, "1");
}

TEST(ParserTest, QuotedStrings) {
  RunCases({
      {"plain", "A1 LOGIN \"user\" \"pass word\"\r\n", {"CMD A1 LOGIN \"user\" \"pass word\""}},
      {"escapes", "A1 LOGIN \"a\\\"b\" \"c\\\\d\"\r\n", {"CMD A1 LOGIN \"a\\\"b\" \"c\\\\d\""}},
      {"empty", "A1 LIST \"\" \"\"\r\n", {"CMD A1 LIST \"\" \"\""}},
      {"specials inside", "A1 X \"(a) {3} [b\"\r\n", {"CMD A1 X \"(a) {3} [b\""}},
      {"utf-8", "A1 X \"\xe2\x82\xac\"\r\n", {"CMD A1 X \"\xe2\x82\xac\""}},
  });
  CommandReader r({});
  r.Feed("A1 LOGIN \"a\\\"b\" \"c\\\\d\"\r\n");
  ASSERT_EQ(r.Next(), CommandReader::Event::kCommand);
  ASSERT_EQ(r.command().args.size(), 2u);
  EXPECT_EQ(r.command().args[0].kind, Token::Kind::kQuoted);
  EXPECT_EQ(r.command().args[0].text, "a\"b");
  EXPECT_EQ(r.command().args[1].text, "c\\d");
  EXPECT_TRUE(r.command().args[0].is_string());
}

TEST(ParserTest, Literals) {
  RunCases({
      {"sync",
       "A1 LOGIN {3}\r\nfoo {3}\r\nbar\r\n",
       {"CONTINUE", "CONTINUE", "CMD A1 LOGIN {foo} {bar}"}},
      {"non-sync", "A1 LOGIN {3+}\r\nfoo {3+}\r\nbar\r\n", {"CMD A1 LOGIN {+foo} {+bar}"}},
      {"mixed", "A1 LOGIN {3+}\r\nfoo {3}\r\nbar\r\n", {"CONTINUE", "CMD A1 LOGIN {+foo} {bar}"}},
      {"octets are opaque",
       "A1 APPEND INBOX {13}\r\n(a\r\n\"{3}\r\n)\r\n\r\n",
       {"CONTINUE", "CMD A1 APPEND INBOX {(a\r\n\"{3}\r\n)\r\n}"}},
      {"empty literal", "A1 LOGIN {0}\r\n {0+}\r\n\r\n", {"CONTINUE", "CMD A1 LOGIN {} {+}"}},
      {"literal8",
       "A1 APPEND INBOX ~{3}\r\na\0b\r\n"s,
       {"CONTINUE", "CMD A1 APPEND INBOX {a\0b}"s}},
      {"literal8 non-sync", "A1 APPEND INBOX ~{2+}\r\nab\r\n", {"CMD A1 APPEND INBOX {+ab}"}},
      {"in the middle of a list",
       "A1 X (a {3}\r\nb c d)\r\n",
       {"CONTINUE", "CMD A1 X (a {b c} d)"}},
      {"list after literal",
       "A1 APPEND INBOX {2+}\r\nhi (\\Seen) {1+}\r\nx\r\n",
       {"CMD A1 APPEND INBOX {+hi} (\\Seen) {+x}"}},
      {"literal closes a list", "A1 X ((a {1}\r\nb)) c\r\n", {"CONTINUE", "CMD A1 X ((a {b})) c"}},
      {"pipelined after literal",
       "A1 LOGIN {1+}\r\nu p\r\nA2 NOOP\r\n",
       {"CMD A1 LOGIN {+u} p", "CMD A2 NOOP"}},
      {"leading zeros", "A1 X {003+}\r\nabc\r\n", {"CMD A1 X {+abc}"}},
      {"at EOF waits forever", "A1 APPEND INBOX {10}\r\nabc", {"CONTINUE"}},
      {"line after literal at EOF", "A1 APPEND INBOX {3}\r\nabc (", {"CONTINUE"}},
  });
  CommandReader r({});
  r.Feed("A1 APPEND INBOX {5+}\r\nab");
  EXPECT_EQ(r.Next(), CommandReader::Event::kNeedInput);
  EXPECT_EQ(r.buffered(), 0u);  // literal octets are taken out of the buffer as they come
  r.Feed("cde\r\n");
  ASSERT_EQ(r.Next(), CommandReader::Event::kCommand);
  const Token& lit = r.command().args.at(1);
  EXPECT_EQ(lit.kind, Token::Kind::kLiteral);
  EXPECT_TRUE(lit.literal_plus);
  EXPECT_TRUE(lit.is_astring());
  EXPECT_EQ(lit.text, "abcde");
}

// A literal check as a session sets one: APPEND with a quoted "bad" among
// the arguments before a literal is refused there.
const char* RefuseBadAppend(std::string_view name, const std::vector<Token>& args) {
  if (name != "APPEND") return nullptr;
  for (const Token& t : args) {
    if (t.kind == Token::Kind::kQuoted && t.text == "bad") return "bad argument";
  }
  return nullptr;
}

TEST(ParserTest, ALiteralCheckRefusesACommandBeforeItsLiteral) {
  const ParserLimits none;
  const CommandReader::LiteralCheck check = &RefuseBadAppend;
  RunCases({
      {"accepted",
       "a APPEND x \"ok\" {2}\r\nhi\r\n",
       {"CONTINUE", "CMD a APPEND x \"ok\" {hi}"},
       none,
       check},
      {"sync: no continuation, the command ends at its line",
       "a append x \"bad\" {5}\r\nb NOOP\r\n",
       {"ERROR a: bad argument", "CMD b NOOP"},
       none,
       check},
      {"non-sync: the octets and the rest of the command are skipped",
       "a APPEND x \"bad\" {10+}\r\nb LOGOUT\r\n\r\nc NOOP\r\n",
       {"ERROR a: bad argument", "CMD c NOOP"},
       none,
       check},
      {"non-sync: a further literal+ of the skipped command too",
       "a APPEND x \"bad\" {3+}\r\nabc {4+}\r\nwxyz\r\nc NOOP\r\n",
       {"ERROR a: bad argument", "CMD c NOOP"},
       none,
       check},
      {"judged at each literal: the second one here",
       "a APPEND {1}\r\nx \"bad\" {2}\r\nc NOOP\r\n",
       {"CONTINUE", "ERROR a: bad argument", "CMD c NOOP"},
       none,
       check},
      {"not inside a list",
       "a APPEND x (\"bad\" {1}\r\nz)\r\n",
       {"CONTINUE", "CMD a APPEND x (\"bad\" {z})"},
       none,
       check},
      {"other commands",
       "a LOGIN \"bad\" {1}\r\nz\r\n",
       {"CONTINUE", "CMD a LOGIN \"bad\" {z}"},
       none,
       check},
      {"the limits come first",
       "a APPEND x \"bad\" {100}\r\nb NOOP\r\n",
       {"ERROR a: literal too large", "CMD b NOOP"},
       Limits(1024, 10, 4096),
       check},
      {"without a check", "a APPEND x \"bad\" {1+}\r\nz\r\n", {"CMD a APPEND x \"bad\" {+z}"}},
  });
}

TEST(ParserTest, ContinueIsSentOnceBeforeTheOctets) {
  CommandReader r({});
  r.Feed("A1 LOGIN {3}");
  EXPECT_EQ(r.Next(), CommandReader::Event::kNeedInput);
  r.Feed("\r\n");
  EXPECT_EQ(r.Next(), CommandReader::Event::kContinue);
  EXPECT_EQ(r.Next(), CommandReader::Event::kNeedInput);
  EXPECT_EQ(r.Next(), CommandReader::Event::kNeedInput);
  r.Feed("fo");
  EXPECT_EQ(r.Next(), CommandReader::Event::kNeedInput);
  r.Feed("o {3+}\r\nbar\r\n");  // non-synchronizing: no continuation
  ASSERT_EQ(r.Next(), CommandReader::Event::kCommand);
  EXPECT_EQ(Describe(r.command()), "A1 LOGIN {foo} {+bar}");
  EXPECT_EQ(r.Next(), CommandReader::Event::kNeedInput);
}

TEST(ParserTest, ListsAndBracketAtoms) {
  RunCases({
      {"nested", "A1 X (a (b (c)) ()) d\r\n", {"CMD A1 X (a (b (c)) ()) d"}},
      {"empty list", "A1 X ()\r\n", {"CMD A1 X ()"}},
      {"fetch atts",
       "A1 FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)]<0.100> FLAGS)\r\n",
       {"CMD A1 FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)]<0.100> FLAGS)"}},
      {"empty section", "A1 FETCH 1 BODY[]\r\n", {"CMD A1 FETCH 1 BODY[]"}},
      {"section at list end",
       "A1 FETCH 1 (BODY[1.2.MIME])\r\n",
       {"CMD A1 FETCH 1 (BODY[1.2.MIME])"}},
      {"nested brackets", "A1 X a[b[c]d]e\r\n", {"CMD A1 X a[b[c]d]e"}},
      // A '[' that nothing closes on its line is an ordinary character.
      {"unclosed bracket", "A1 FETCH 1 BODY[HEADER\r\n", {"CMD A1 FETCH 1 BODY[HEADER"}},
      {"imaptest atoms",
       "A1 SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}\r\n",
       {"CMD A1 SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}"}},
      {"unclosed then closed", "A1 X a[b c[d]e\r\n", {"CMD A1 X a[b c[d]e"}},
      {"outer unclosed", "A1 X a[[b]c d\r\n", {"CMD A1 X a[[b]c d"}},
      {"unclosed before list end", "A1 X (a[b) c\r\n", {"CMD A1 X (a[b) c"}},
      {"many unclosed",
       "A1 X " + std::string(5000, '[') + "\r\n",
       {"CMD A1 X " + std::string(5000, '[')}},
      {"32 levels",
       "A1 X " + std::string(32, '(') + std::string(32, ')') + "\r\n",
       {"CMD A1 X " + std::string(32, '(') + std::string(32, ')')}},
  });
  CommandReader r({});
  r.Feed("A1 FETCH 1 BODY[HEADER.FIELDS (A B)]<0.10>\r\n");
  ASSERT_EQ(r.Next(), CommandReader::Event::kCommand);
  ASSERT_EQ(r.command().args.size(), 2u);
  EXPECT_EQ(r.command().args[1].kind, Token::Kind::kAtom);
  EXPECT_EQ(r.command().args[1].text, "BODY[HEADER.FIELDS (A B)]<0.10>");
}

TEST(ParserTest, NilAtom) {
  Token t;
  t.text = "nIl";
  EXPECT_TRUE(t.IsNil());
  t.kind = Token::Kind::kQuoted;
  EXPECT_FALSE(t.IsNil());
  t.kind = Token::Kind::kAtom;
  t.text = "NILS";
  EXPECT_FALSE(t.IsNil());
}

// Every recoverable error, each followed by a good command that must parse.
std::vector<Case> ErrorCases() {
  const std::string nested10k = std::string(10000, '(');
  return {
      {"missing tag", " NOOP\r\n", {"ERROR : missing or invalid tag"}},
      {"untagged", "* NOOP\r\n", {"ERROR : missing or invalid tag"}},
      {"plus tag", "+ NOOP\r\n", {"ERROR : missing or invalid tag"}},
      {"bad tag char", "A(1 NOOP\r\n", {"ERROR : missing or invalid tag"}},
      {"tag only", "A1\r\n", {"ERROR A1: missing command name"}},
      {"tag and space", "A1 \r\n", {"ERROR A1: missing command name"}},
      {"list for name", "A1 (NOOP)\r\n", {"ERROR A1: missing command name"}},
      {"bad name", "A1 NO\"OP\r\n", {"ERROR A1: invalid command name"}},
      {"unterminated quote", "A1 LOGIN \"foo\r\n", {"ERROR A1: unterminated quoted string"}},
      {"backslash at end", "A1 LOGIN \"foo\\\r\n", {"ERROR A1: unterminated quoted string"}},
      {"bad escape", "A1 LOGIN \"fo\\o\" x\r\n", {"ERROR A1: invalid escape in quoted string"}},
      {"NUL in quote",
       "A1 LOGIN \"f\0o\" x\r\n"s,
       {"ERROR A1: invalid character in quoted string"}},
      {"CR in quote", "A1 LOGIN \"f\ro\" x\r\n", {"ERROR A1: invalid character in quoted string"}},
      {"CTL in atom", "A1 X a\x01z\r\n", {"ERROR A1: invalid character in atom"}},
      {"quote in atom", "A1 X ab\"c\"\r\n", {"ERROR A1: invalid character in atom"}},
      {"brace in atom", "A1 X ab{3}\r\n", {"ERROR A1: invalid character in atom"}},
      {"paren in atom", "A1 X ab(c)\r\n", {"ERROR A1: invalid character in atom"}},
      {"unexpected paren", "A1 FETCH 1 FLAGS)\r\n", {"ERROR A1: unexpected ')'"}},
      {"missing paren", "A1 FETCH 1 (FLAGS\r\n", {"ERROR A1: missing ')'"}},
      {"missing paren after literal", "A1 X ({1}\r\na\r\n", {"CONTINUE", "ERROR A1: missing ')'"}},
      {"lists not separated", "A1 X (a)(b)\r\n", {"ERROR A1: missing space between arguments"}},
      {"strings not separated",
       "A1 X \"a\"\"b\"\r\n",
       {"ERROR A1: missing space between arguments"}},
      {"literal then junk",
       "A1 X {1}\r\nab\r\n",
       {"CONTINUE", "ERROR A1: missing space between arguments"}},
      {"literal not at line end", "A1 LOGIN {3} foo\r\n", {"ERROR A1: literal must end the line"}},
      {"empty literal size", "A1 LOGIN {}\r\n", {"ERROR A1: invalid literal"}},
      {"literal size not a number", "A1 LOGIN {3a}\r\n", {"ERROR A1: invalid literal"}},
      {"literal plus only", "A1 LOGIN {+}\r\n", {"ERROR A1: invalid literal"}},
      {"unterminated announcement", "A1 LOGIN {3\r\n", {"ERROR A1: invalid literal"}},
      {"2 GiB sync literal", "A1 APPEND INBOX {2147483648}\r\n", {"ERROR A1: literal too large"}},
      {"huge sync literal",
       "A1 APPEND INBOX {999999999999999999999999}\r\n",
       {"ERROR A1: literal too large"}},
      {"sync literal over max_command",
       "A1 APPEND INBOX {30}\r\n",
       {"ERROR A1: command too long"},
       Limits(1024, 1024, 40)},
      {"non-sync literal over max_command is skipped",
       "A1 APPEND INBOX {30+}\r\n" + std::string(30, 'x') + " more {2+}\r\nab\r\n",
       {"ERROR A1: command too long"},
       Limits(1024, 1024, 40)},
      {"lines over max_command",
       "A1 X {1+}\r\na {1+}\r\nb {1+}\r\nc {1+}\r\nd\r\n",
       {"ERROR A1: command too long"},
       Limits(1024, 1024, 30)},
      {"too many tokens",
       "A1 X a b c d\r\n",
       {"ERROR A1: too many arguments"},
       Limits(1024, 1024, 4096, 32, 3)},
      {"too many tokens in lists",
       "A1 X (a) (b)\r\n",
       {"ERROR A1: too many arguments"},
       Limits(1024, 1024, 4096, 32, 3)},
      {"too many tokens by literal",
       "A1 X a b {1}\r\n",
       {"ERROR A1: too many arguments"},
       Limits(1024, 1024, 4096, 32, 2)},
      {"too deep",
       "A1 X (((a)))\r\n",
       {"ERROR A1: lists nested too deeply"},
       Limits(1024, 1024, 4096, 2)},
      {"33 levels",
       "A1 X " + std::string(33, '(') + std::string(33, ')') + "\r\n",
       {"ERROR A1: lists nested too deeply"}},
      {"10k open parens", "A1 X " + nested10k + "\r\n", {"ERROR A1: lists nested too deeply"}},
      {"10k balanced parens",
       "A1 X " + nested10k + std::string(10000, ')') + "\r\n",
       {"ERROR A1: lists nested too deeply"}},
      {"overlong line",
       "A1 LOGIN " + std::string(100, 'x') + "\r\n",
       {"ERROR A1: line too long"},
       Limits(32, 1024, 4096)},
      {"overlong line, tag unseen",
       std::string(100, 'x') + " NOOP\r\n",
       {"ERROR : line too long"},
       Limits(32, 1024, 4096)},
      {"line of exactly max_line + 1",
       "A1 X 123456\r\n",
       {"ERROR A1: line too long"},
       Limits(12, 1024, 4096)},
      {"overlong line after literal",
       "A1 X {1}\r\na " + std::string(100, 'y') + "\r\n",
       {"CONTINUE", "ERROR A1: line too long"},
       Limits(32, 1024, 4096)},
      {"overlong line ending in non-sync literal",
       "A1 X " + std::string(100, 'y') + " {5+}\r\nhello\r\n",
       {"ERROR A1: line too long"},
       Limits(32, 1024, 4096)},
      {"overlong line while skipping",
       "A1 X ) {2+}\r\nab" + std::string(100, 'y') + " {3+}\r\nabc\r\n",
       {"ERROR A1: unexpected ')'"},
       Limits(32, 1024, 4096)},
      {"rejected command's non-sync literals are skipped",
       "A1 X ) {3+}\r\na\r\n {2+}\r\nxy\r\n",
       {"ERROR A1: unexpected ')'"}},
      {"rejected command's sync literal is not expected",
       "A1 X ) {3}\r\n",
       {"ERROR A1: unexpected ')'"}},
      {"missing name with literal", "A1 {2+}\r\nab\r\n", {"ERROR A1: missing command name"}},
      {"bad tag with literal", "* X {2+}\r\nab\r\n", {"ERROR : missing or invalid tag"}},
  };
}

TEST(ParserTest, Errors) { RunCases(ErrorCases()); }

TEST(ParserTest, ResyncAfterEveryError) {
  for (Case c : ErrorCases()) {
    SCOPED_TRACE(c.name);
    c.input += "Z9 NOOP\r\n";
    c.expected.push_back("CMD Z9 NOOP");
    EXPECT_EQ(Replay(c.input, c.limits), c.expected);
  }
}

TEST(ParserTest, FatalErrors) {
  RunCases({
      {"2 GiB non-sync literal",
       "A1 APPEND INBOX {2147483648+}\r\nZ9 NOOP\r\n",
       {"FATAL A1: literal too large"}},
      {"huge non-sync literal",
       "A1 X {99999999999999999999999+}\r\n",
       {"FATAL A1: literal too large"}},
      {"non-sync literal over max_literal",
       "A1 X {11+}\r\n",
       {"FATAL A1: literal too large"},
       Limits(1024, 10, 4096)},
      {"non-sync literal over max_literal after an error",
       "A1 X ) {11+}\r\n",
       {"FATAL A1: literal too large"},
       Limits(1024, 10, 4096)},
      {"non-sync literal over max_literal while skipping",
       "A1 X ) {1+}\r\na {11+}\r\nZ9 NOOP\r\n",
       {"ERROR A1: unexpected ')'", "FATAL A1: literal too large"},
       Limits(1024, 10, 4096)},
      {"runaway line without LF",
       "A1 " + std::string(200, 'x'),
       {"FATAL A1: line too long"},
       Limits(16, 1024, 100)},
      {"runaway line with LF",
       "A1 " + std::string(200, 'x') + "\r\nZ9 NOOP\r\n",
       {"FATAL A1: line too long"},
       Limits(16, 1024, 100)},
      {"fatal is final",
       "A1 X {11+}\r\nZ9 NOOP\r\n",
       {"FATAL A1: literal too large"},
       Limits(1024, 10, 4096)},
  });
  CommandReader r(Limits(1024, 10, 4096));
  r.Feed("A1 X {11+}\r\n");
  EXPECT_EQ(r.Next(), CommandReader::Event::kFatal);
  r.Feed("Z9 NOOP\r\n");
  EXPECT_EQ(r.Next(), CommandReader::Event::kFatal);
}

TEST(ParserTest, HugeAnnouncementAllocatesNothing) {
  // Even when the limits would allow it, nothing is reserved up front.
  ParserLimits l = Limits(1024, 4ull << 30, size_t{8} << 30);
  CommandReader r(l);
  r.Feed("A1 APPEND INBOX {2147483648+}\r\n");
  EXPECT_EQ(r.Next(), CommandReader::Event::kNeedInput);
  r.Feed(std::string(4096, 'x'));
  EXPECT_EQ(r.Next(), CommandReader::Event::kNeedInput);
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(ParserTest, OverlongLineIsNotBuffered) {
  CommandReader r(Limits(1024, 1024, size_t{64} << 20));
  r.Feed("A1 X ");
  for (int i = 0; i < 1000; ++i) {
    r.Feed(std::string(10000, 'x'));
    ASSERT_EQ(r.Next(), CommandReader::Event::kNeedInput);
    EXPECT_LE(r.buffered(), 1024u);
  }
  r.Feed("\r\nZ9 NOOP\r\n");
  EXPECT_EQ(r.Next(), CommandReader::Event::kError);
  EXPECT_EQ(r.error_tag(), "A1");
  ASSERT_EQ(r.Next(), CommandReader::Event::kCommand);
  EXPECT_EQ(r.command().tag, "Z9");
}

TEST(ParserTest, RawLineMode) {
  RunCases({
      {"idle",
       "A1 IDLE\r\nfoo bar\r\nDONE\r\nA2 NOOP\r\n",
       {"CMD A1 IDLE", "RAW foo bar", "RAW DONE", "CMD A2 NOOP"}},
      {"authenticate",
       "A1 AUTHENTICATE PLAIN\r\nAGZvbwBiYXI=\r\n\r\n*\r\nA2 NOOP\r\n",
       {"CMD A1 AUTHENTICATE PLAIN", "RAW AGZvbwBiYXI=", "RAW ", "RAW *", "CMD A2 NOOP"}},
      {"no literal or quote processing",
       "A1 IDLE\r\n{5}\r\n\"x ( [\r\nDONE\r\n",
       {"CMD A1 IDLE", "RAW {5}", "RAW \"x ( [", "RAW DONE"}},
      {"overlong raw line",
       "A1 IDLE\r\n" + std::string(100, 'x') + " {3+}\r\nDONE\r\nA2 NOOP\r\n",
       {"CMD A1 IDLE", "ERROR : line too long", "RAW DONE", "CMD A2 NOOP"},
       Limits(32, 1024, 4096)},
      {"raw line at EOF", "A1 IDLE\r\nDON", {"CMD A1 IDLE"}},
  });
  CommandReader r({});
  r.SetRawLineMode(true);
  r.Feed("x y\r\n");
  ASSERT_EQ(r.Next(), CommandReader::Event::kRawLine);
  EXPECT_EQ(r.raw_line(), "x y");
  r.SetRawLineMode(false);
  r.Feed("A1 NOOP\r\n");
  EXPECT_EQ(r.Next(), CommandReader::Event::kCommand);
}

TEST(SequenceSetTest, Valid) {
  auto set = ParseSequenceSet("1:3,5,7:*");
  ASSERT_EQ(set.size(), 3u);
  EXPECT_EQ(set[0].low, 1u);
  EXPECT_EQ(set[0].high, 3u);
  EXPECT_EQ(set[1].low, 5u);
  EXPECT_EQ(set[1].high, 5u);
  EXPECT_EQ(set[2].low, 7u);
  EXPECT_EQ(set[2].high, kStar);

  set = ParseSequenceSet("*:4");
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set[0].low, 4u);
  EXPECT_EQ(set[0].high, kStar);

  set = ParseSequenceSet("9:2");
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set[0].low, 2u);
  EXPECT_EQ(set[0].high, 9u);

  set = ParseSequenceSet("*");
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set[0].low, kStar);
  EXPECT_EQ(set[0].high, kStar);

  set = ParseSequenceSet("4294967294:4294967295");
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set[0].low, 4294967294u);
  EXPECT_EQ(set[0].high, 4294967294u);
}

// 2^32-1 is a valid number, never "*" (imaptest search-sets: UID SEARCH UID
// $uidnext:4294967295 finds nothing).
TEST(SequenceSetTest, LargestNumberIsNotStar) {
  auto set = ParseSequenceSet("7:4294967295");
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set[0].low, 7u);
  EXPECT_EQ(set[0].high, kMaxSeqNumber);
  EXPECT_FALSE(InSequenceSet(set, 6, 6));  // "*" would have meant 6
  EXPECT_TRUE(InSequenceSet(set, 7, 7));
  EXPECT_TRUE(InSequenceSet(set, kMaxSeqNumber, 7));
  set = ParseSequenceSet("4294967295");
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set[0].low, kMaxSeqNumber);
  EXPECT_FALSE(InSequenceSet(set, 5, 5));
  EXPECT_TRUE(ParseSequenceSet("4294967296").empty());
}

TEST(SequenceSetTest, Invalid) {
  for (const char* bad : {"",
                          "0",
                          "0:3",
                          "3:0",
                          "01",
                          "1,",
                          ",1",
                          "1,,2",
                          "1:",
                          ":1",
                          "1::2",
                          "1:2:3",
                          "a",
                          "1 2",
                          " 1",
                          "1 ",
                          "$",
                          "-1",
                          "1.5",
                          "**",
                          "*1",
                          "4294967296",
                          "99999999999999999999999",
                          "1:4294967296"}) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(ParseSequenceSet(bad).empty());
  }
}

TEST(SequenceSetTest, Membership) {
  auto set = ParseSequenceSet("1:3,5,7:*");
  EXPECT_TRUE(InSequenceSet(set, 1, 10));
  EXPECT_TRUE(InSequenceSet(set, 3, 10));
  EXPECT_FALSE(InSequenceSet(set, 4, 10));
  EXPECT_TRUE(InSequenceSet(set, 5, 10));
  EXPECT_FALSE(InSequenceSet(set, 6, 10));
  EXPECT_TRUE(InSequenceSet(set, 7, 10));
  EXPECT_TRUE(InSequenceSet(set, 10, 10));

  // "*" is the largest number in use, so 7:* with largest 5 is 5:7.
  set = ParseSequenceSet("7:*");
  EXPECT_TRUE(InSequenceSet(set, 5, 5));
  EXPECT_FALSE(InSequenceSet(set, 4, 5));

  set = ParseSequenceSet("*");
  EXPECT_TRUE(InSequenceSet(set, 42, 42));
  EXPECT_FALSE(InSequenceSet(set, 41, 42));

  EXPECT_FALSE(InSequenceSet({}, 1, 1));
}

}  // namespace
}  // namespace porcupine::imap

// ---- literals and the memory budget (parser.h, "Memory")

namespace porcupine::imap {
namespace {

TEST(ParserMemoryTest, LiteralsAreReservedWhenAnnouncedAndHandedOutWithTheCommand) {
  MemoryBudget budget(100);
  CommandReader r{ParserLimits{}};
  r.SetMemoryBudget(&budget);
  r.Feed("a LOGIN {5}\r\n");
  ASSERT_EQ(r.Next(), CommandReader::Event::kContinue);
  EXPECT_EQ(budget.used(), 5u);  // before any octet arrived
  r.Feed("alice {30+}\r\n" + std::string(30, 'p') + "\r\n");
  ASSERT_EQ(r.Next(), CommandReader::Event::kCommand);
  EXPECT_EQ(budget.used(), 35u);
  {
    MemoryReservation held = r.TakeReservation();
    EXPECT_EQ(held.bytes(), 35u);
    Command c = r.TakeCommand();
    EXPECT_EQ(c.args.size(), 2u);
  }
  EXPECT_EQ(budget.used(), 0u);  // given back with the command
  EXPECT_EQ(budget.peak(), 35u);
}

TEST(ParserMemoryTest, ASyncLiteralThatDoesNotFitGetsNoContinuation) {
  MemoryBudget budget(100);
  CommandReader r{ParserLimits{}};
  r.SetMemoryBudget(&budget);
  r.Feed("a APPEND INBOX {101}\r\nb NOOP\r\n");
  ASSERT_EQ(r.Next(), CommandReader::Event::kError);
  EXPECT_TRUE(r.no_memory());
  EXPECT_EQ(r.error_tag(), "a");
  ASSERT_EQ(r.Next(), CommandReader::Event::kCommand);  // the command ended at its line end
  EXPECT_EQ(r.command().tag, "b");
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_EQ(budget.refusals(), 1u);
}

TEST(ParserMemoryTest, ANonSyncLiteralThatDoesNotFitIsReadAndDiscarded) {
  MemoryBudget budget(100);
  CommandReader r{ParserLimits{}};
  r.SetMemoryBudget(&budget);
  // An earlier literal of the same command is given back too.
  r.Feed("a APPEND {5+}\r\nINBOX {1000+}\r\n");
  ASSERT_EQ(r.Next(), CommandReader::Event::kError);
  EXPECT_TRUE(r.no_memory());
  EXPECT_EQ(budget.used(), 0u);
  // The octets that follow are skipped as they come, never buffered: they
  // hold what would be commands.
  const std::string octets = "x LOGOUT\r\n" + std::string(990, 'z');
  for (size_t i = 0; i < octets.size(); i += 64) {
    r.Feed(octets.substr(i, 64));
    EXPECT_EQ(r.Next(), CommandReader::Event::kNeedInput);
    EXPECT_LE(r.buffered(), 64u);
  }
  r.Feed("\r\nb NOOP\r\n");
  ASSERT_EQ(r.Next(), CommandReader::Event::kCommand);
  EXPECT_EQ(r.command().tag, "b");
  // A later failure over another limit is not a memory refusal.
  r.Feed("c APPEND INBOX {99999999999}\r\n");
  ASSERT_EQ(r.Next(), CommandReader::Event::kError);
  EXPECT_FALSE(r.no_memory());
}

}  // namespace
}  // namespace porcupine::imap
