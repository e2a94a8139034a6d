#include "mime/message.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace porcupine::mime {
namespace {

// Test messages are written with "\n"; stored messages use CRLF.
std::string Crlf(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out.push_back('\r');
    out.push_back(c);
  }
  return out;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// imaptest compares IMAP atoms and strings case-insensitively.
#define EXPECT_IMAP_EQ(expected, actual) EXPECT_EQ(Lower(expected), Lower(actual))

Section Sec(std::vector<uint32_t> part, Section::Kind kind = Section::Kind::kAll,
            std::vector<std::string> fields = {}) {
  Section s;
  s.part = std::move(part);
  s.kind = kind;
  s.fields = std::move(fields);
  return s;
}

using K = Section::Kind;

// ---- fixtures (the imaptest ones are its .mbox messages, LF → CRLF) -------

const std::string kSimple = Crlf(R"(From: Alice <alice@example.org>
To: bob@example.org
Subject: Hello
Date: Mon, 7 Feb 1994 21:52:25 -0800
Message-ID: <B27397-0100000@example.org>

Hello Bob,
how are you?
)");

const std::string kAlternative = Crlf(R"(From: a@example.org
Subject: alt
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=XYZ

--XYZ
Content-Type: text/plain; charset=utf-8

plain
--XYZ
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<b>html</b>
--XYZ--
)");

const std::string kMixed = Crlf(R"(From: a@example.org
Subject: report
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="==b1=="

preamble
--==b1==
Content-Type: text/plain

See attached.

--==b1==
Content-Type: application/pdf; name="r.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="r.pdf"
Content-ID: <part2@example.org>
Content-Description: The report
Content-Language: en, de
Content-Location: http://example.org/r.pdf
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==

JVBERi0xLjQK
aGVsbG8=

--==b1==--
epilogue
)");

// imaptest fetch-body-mime.mbox.
const std::string kBodyMime = Crlf(R"(From: user@domain.org
Date: Sat, 24 Mar 2007 23:00:00 +0200
Mime-Version: 1.0
Content-Type: multipart/mixed; boundary="foo
 bar"

Root MIME prologue

--foo bar
Content-Type: text/x-myown; charset=us-ascii

hello

--foo bar
Content-Type: message/rfc822

From: sub@domain.org
Date: Sun, 12 Aug 2012 12:34:56 +0300
Subject: submsg
Content-Type: multipart/alternative; boundary="sub1"

Sub MIME prologue
--sub1
Content-Type: text/html

<p>Hello world</p>

--sub1
Content-Type: text/plain

Hello another world

--sub1--
Sub MIME epilogue

--foo bar--
Root MIME epilogue
)");

// imaptest fetch-body-message-rfc822-mime.mbox: a digest inside a message.
const std::string kDigest = Crlf(R"(From: user@domain.org
Date: Sat, 24 Mar 2007 23:00:00 +0200
Mime-Version: 1.0
Content-Type: message/rfc822

From: sub@domain.org
Date: Sun, 12 Aug 2012 12:34:56 +0300
Subject: submsg
Content-Type: multipart/digest; boundary="foo"

prologue

--foo 

From: m1@example.com
Subject: m1

m1 body

--foo 
X-Mime: m2 header

From: m2@example.com
Subject: m2

m2 body

--foo--

epilogue
)");

// imaptest fetch-body-message-rfc822-x2.mbox.
const std::string kRfc822x2 = Crlf(R"(From: user@domain.org
Date: Sat, 24 Mar 2007 23:00:00 +0200
Mime-Version: 1.0
Content-Type: message/rfc822

From: user2@domain.org
Date: Fri, 23 Mar 2007 11:22:33 +0200
Mime-Version: 1.0
Content-Type: message/rfc822

From: sub@domain.org
Date: Sun, 12 Aug 2012 12:34:56 +0300
Subject: submsg

Hello world
)");

const std::string kLatin1Qp = Crlf(R"(From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>
To: "Bob \"the\" Builder" <bob@example.org>
Subject: =?iso-8859-1?q?Caf=E9_cr=E8me?=
Date: Sat, 24 Mar 2007 23:00:00 +0200
MIME-Version: 1.0
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Un caf=E9 cr=E8me, s'il vous pla=EEt. Tr=
=E8s chaud.
)");

// ---- ENVELOPE ---------------------------------------------------------------

struct EnvelopeCase {
  std::string header;    // LF line ends; a body is appended
  std::string expected;  // imaptest's expectation (fetch-envelope) or ours
};

TEST(MimeEnvelope, MatchesImaptestFetchEnvelope) {
  const std::string date = "Date: Thu, 15 Feb 2007 01:02:03 +0200\n";
  const std::string d = R"("Thu, 15 Feb 2007 01:02:03 +0200")";
  const std::vector<EnvelopeCase> cases = {
      {"Message-ID: <msg@id>\nIn-Reply-To: <reply@to.id>\n" + date +
           "Subject: subject header\nFrom: From Real <fromuser@fromdomain.org>\n"
           "To: To Real <touser@todomain.org>\nCc: Cc Real <ccuser@ccdomain.org>\n"
           "Bcc: Bcc Real <bccuser@bccdomain.org>\n"
           "Sender: Sender Real <senderuser@senderdomain.org>\n"
           "Reply-To: ReplyTo Real <replytouser@replytodomain.org>\n",
       "(" + d +
           R"( "subject header" (("From Real" NIL "fromuser" "fromdomain.org")) (("Sender Real" NIL "senderuser" "senderdomain.org")) (("ReplyTo Real" NIL "replytouser" "replytodomain.org")) (("To Real" NIL "touser" "todomain.org")) (("Cc Real" NIL "ccuser" "ccdomain.org")) (("Bcc Real" NIL "bccuser" "bccdomain.org")) "<reply@to.id>" "<msg@id>"))"},
      {date + "From: user@domain\n",
       "(" + d +
           R"( NIL ((NIL NIL "user" "domain")) ((NIL NIL "user" "domain")) ((NIL NIL "user" "domain")) NIL NIL NIL NIL NIL))"},
      {date + "From: user@domain (Real Name)\n"
              "To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\n"
              "Cc: group:;, group2: (foo) ;\n",
       "(" + d +
           R"( NIL (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) ((NIL NIL "group" NIL)(NIL NIL "g1" "d1.org")(NIL NIL "g2" "d2.org")(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL "g3" "d3.org")(NIL NIL NIL NIL)) ((NIL NIL "group" NIL)(NIL NIL NIL NIL)(NIL NIL "group2" NIL)(NIL NIL NIL NIL)) NIL NIL NIL))"},
      {date + "From: user@domain (Real Name)\nSender: \nReply-To: \n",
       "(" + d +
           R"( NIL (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) NIL NIL NIL NIL NIL))"},
      {date + "From: <@route:user@domain>\n",
       "(" + d +
           R"( NIL ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) NIL NIL NIL NIL NIL))"},
  };
  for (const EnvelopeCase& c : cases) {
    auto m = ParsedMessage::Parse(Crlf(c.header + "\nbody\n"));
    EXPECT_IMAP_EQ(c.expected, m->Envelope()) << c.header;
  }
}

TEST(MimeEnvelope, FieldsAndQuoting) {
  const std::vector<EnvelopeCase> cases = {
      // No header at all: every field NIL.
      {"", "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"},
      // Subject and names are written "for humans" (Dovecot): blanks and
      // folding collapse to one space, and a changed text, or one with '"'
      // or '\', goes out as a literal.
      {"Subject: say \"hi\" \\o/\n  again\n",
       "(NIL {18}\r\nsay \"hi\" \\o/ again NIL NIL NIL NIL NIL NIL NIL NIL)"},
      {"Subject:  a\tb  \nFrom: \"x\ty\" <a@b>\n",
       "(NIL {3}\r\na b (({3}\r\nx y NIL \"a\" \"b\")) (({3}\r\nx y NIL \"a\" \"b\")) "
       "(({3}\r\nx y NIL \"a\" \"b\")) NIL NIL NIL NIL NIL)"},
      // Other strings are quoted with escapes (up to four), folding removed.
      {"Message-ID: <\"a\"@b>\nIn-Reply-To: <\"\"\"\"\"@b>\n",
       "(NIL NIL NIL NIL NIL NIL NIL NIL {9}\r\n<\"\"\"\"\"@b> \"<\\\"a\\\"@b>\")"},
      // 8-bit header text goes out as a literal, byte for byte.
      {"Subject: Gr\xc3\xbc\xc3\x9f"
       "e\n",
       "(NIL {7}\r\nGr\xc3\xbc\xc3\x9f"
       "e NIL NIL NIL NIL NIL NIL NIL NIL)"},
      // Repeated address fields are joined (Dovecot).
      {"From: a@x\nFrom: b@y\n",
       R"((NIL NIL ((NIL NIL "a" "x")(NIL NIL "b" "y")) ((NIL NIL "a" "x")(NIL NIL "b" "y")) ((NIL NIL "a" "x")(NIL NIL "b" "y")) NIL NIL NIL NIL NIL))"},
      // Encoded words stay encoded (IMAP clients decode them).
      {"From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\n",
       R"((NIL NIL (("=?utf-8?q?J=C3=B6rg?=" NIL "j" "example.org")) (("=?utf-8?q?J=C3=B6rg?=" NIL "j" "example.org")) (("=?utf-8?q?J=C3=B6rg?=" NIL "j" "example.org")) NIL NIL NIL NIL NIL))"},
      // Quoted display names, several addresses, a name with no address.
      // (Dovecot's recovery: a lone word is a mailbox without host, words
      // without an address are a name without mailbox.)
      {"To: \"Doe, John\" <john@example.org>, jane@example.org\nCc: Nobody\nBcc: No Body\n",
       R"((NIL NIL NIL NIL NIL (("Doe, John" NIL "john" "example.org")(NIL NIL "jane" "example.org")) ((NIL NIL "Nobody" "MISSING_DOMAIN")) (("No Body" NIL "MISSING_MAILBOX" "MISSING_DOMAIN")) NIL NIL))"},
      // The last of repeated fields is used (as Dovecot does); an empty
      // Subject is "".
      {"Subject: first\nSubject:\nMessage-ID: <a@b>\nMessage-ID: <c@d>\n",
       R"((NIL "" NIL NIL NIL NIL NIL NIL NIL "<c@d>"))"},
  };
  for (const EnvelopeCase& c : cases) {
    auto m = ParsedMessage::Parse(Crlf(c.header + "\nbody\n"));
    EXPECT_EQ(c.expected, m->Envelope()) << c.header;
  }
}

// ---- BODY / BODYSTRUCTURE ---------------------------------------------------

TEST(MimeBodyStructure, SinglePartText) {
  auto m = ParsedMessage::Parse(kSimple);
  EXPECT_EQ(R"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 26 2))",
            m->BodyStructure(false));
  EXPECT_EQ(R"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 26 2 NIL NIL NIL NIL))",
            m->BodyStructure(true));
}

TEST(MimeBodyStructure, MatchesImaptestFetchBodystructure) {
  auto m = ParsedMessage::Parse(Crlf(R"(From: user@domain.org
Date: Sat, 24 Mar 2007 23:00:00 +0200
Mime-Version: 1.0
Content-Type: multipart/mixed; boundary="foo
 bar"

--foo bar
Content-Type: text/x-myown; charset=us-ascii

hello

--foo bar--
)"));
  EXPECT_IMAP_EQ(R"((("TEXT" "x-MYOWN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 7 1) "MIXED"))",
                 m->BodyStructure(false));
  // As written in the message, like Dovecot.
  EXPECT_EQ(R"((("text" "x-myown" ("charset" "us-ascii") NIL NIL "7bit" 7 1) "mixed"))",
            m->BodyStructure(false));
}

TEST(MimeBodyStructure, MultipartAlternative) {
  auto m = ParsedMessage::Parse(kAlternative);
  EXPECT_EQ(
      R"((("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 5 0)("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 11 0) "alternative"))",
      m->BodyStructure(false));
  EXPECT_EQ(
      R"((("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 5 0 NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "quoted-printable" 11 0 NIL NIL NIL NIL) "alternative" ("boundary" "XYZ") NIL NIL NIL))",
      m->BodyStructure(true));
}

TEST(MimeBodyStructure, MixedWithBase64AttachmentAndExtensionData) {
  auto m = ParsedMessage::Parse(kMixed);
  EXPECT_EQ(
      R"((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 15 1 NIL NIL NIL NIL)("application" "pdf" ("name" "r.pdf") "<part2@example.org>" "The report" "base64" 24 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("attachment" ("filename" "r.pdf")) ("en" "de") "http://example.org/r.pdf") "mixed" ("boundary" "==b1==") NIL NIL NIL))",
      m->BodyStructure(true));
  EXPECT_EQ(
      R"((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 15 1)("application" "pdf" ("name" "r.pdf") "<part2@example.org>" "The report" "base64" 24) "mixed"))",
      m->BodyStructure(false));
  // The sizes are those of the section octets.
  EXPECT_EQ(15u, m->SectionBytes(Sec({1}))->size());
  EXPECT_EQ(Crlf("JVBERi0xLjQK\naGVsbG8=\n"), *m->SectionBytes(Sec({2})));
}

TEST(MimeBodyStructure, NestedMessageRfc822) {
  auto m = ParsedMessage::Parse(kBodyMime);
  const std::string sub_envelope =
      R"(("Sun, 12 Aug 2012 12:34:56 +0300" "submsg" ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) ((NIL NIL "sub" "domain.org")) NIL NIL NIL NIL NIL))";
  EXPECT_EQ(
      R"((("text" "x-myown" ("charset" "us-ascii") NIL NIL "7bit" 7 1)("message" "rfc822" NIL NIL NIL "7bit" 298 )" +
          sub_envelope +
          R"( (("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 20 1)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 1) "alternative") 18) "mixed"))",
      m->BodyStructure(false));
  EXPECT_EQ(
      R"((("text" "x-myown" ("charset" "us-ascii") NIL NIL "7bit" 7 1 NIL NIL NIL NIL)("message" "rfc822" NIL NIL NIL "7bit" 298 )" +
          sub_envelope +
          R"( (("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 20 1 NIL NIL NIL NIL)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 21 1 NIL NIL NIL NIL) "alternative" ("boundary" "sub1") NIL NIL NIL) 18 NIL NIL NIL NIL) "mixed" ("boundary" "foo bar") NIL NIL NIL))",
      m->BodyStructure(true));
}

TEST(MimeBodyStructure, DigestPartsDefaultToMessageRfc822) {
  auto m = ParsedMessage::Parse(kDigest);
  const std::string body = m->BodyStructure(false);
  EXPECT_NE(
      std::string::npos,
      body.find(
          R"(("message" "rfc822" NIL NIL NIL "7bit" 46 (NIL "m1" ((NIL NIL "m1" "example.com")))"))
      << body;
  EXPECT_NE(std::string::npos, body.find(R"( 4) "digest") 25))")) << body;
}

TEST(MimeBodyStructure, ParametersAndOddContentTypes) {
  struct Case {
    std::string header;
    std::string expected;  // BODY
  };
  const std::vector<Case> cases = {
      // RFC 2231 continuations are merged; encoded ones keep their encoding.
      {"Content-Type: application/x-a; name*0=\"long \"; name*1=name; title*=us-ascii'en'%41\n",
       R"(("application" "x-a" ("name" "long name" "title*" "us-ascii'en'%41") NIL NIL "7bit" 6))"},
      // An explicit charset is not doubled; the default is appended.
      {"Content-Type: TEXT/Plain; format=flowed\n",
       R"(("TEXT" "Plain" ("format" "flowed" "charset" "us-ascii") NIL NIL "7bit" 6 1))"},
      // A multipart without boundary has no parts (Dovecot 2.3).
      {"Content-Type: multipart/mixed\n",
       R"((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed"))"},
      // Content-* fields without MIME-Version or Content-Type do not count.
      {"Content-Transfer-Encoding: base64\nContent-Disposition: inline\n",
       R"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1))"},
      {"MIME-Version: 1.0\nContent-Transfer-Encoding: base64\n",
       R"(("text" "plain" ("charset" "us-ascii") NIL NIL "base64" 6 1))"},
      // Broken parameters as Dovecot reads them: an empty name is kept, a
      // stray ";;" loses what follows, junk is skipped up to the next ';'.
      {"Content-Type: text/plain; ===; charset=\"utf-8\"; broken\n",
       R"(("text" "plain" ("" "==" "charset" "utf-8") NIL NIL "7bit" 6 1))"},
      {"Content-Type: text/plain;;charset=x\n",
       R"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1))"},
      {"Content-Type: text/plain; charset=x junk; format=flowed\n",
       R"(("text" "plain" ("charset" "x" "format" "flowed") NIL NIL "7bit" 6 1))"},
      // Only "type" or "type/subtype" then ';' counts; else "" "".
      {"Content-Type: text; charset=x\n", R"(("" "" NIL NIL NIL "7bit" 6))"},
      {"Content-Type: text/plain/x\n", R"(("" "" NIL NIL NIL "7bit" 6))"},
      // An unparsed multipart or message is application/octet-stream.
      {"Content-Type: multipart\n", R"(("application" "octet-stream" NIL NIL NIL "7bit" 6))"},
      // An unparsable Content-Type is reported as "" "" (Dovecot).
      {"Content-Type:\n", R"(("" "" NIL NIL NIL "7bit" 6))"},
      {"Content-Type: multipart/; boundary=x\n", R"(("" "" NIL NIL NIL "7bit" 6))"},
      {"Content-Type: text\n", R"(("text" "" ("charset" "us-ascii") NIL NIL "7bit" 6 1))"},
  };
  for (const Case& c : cases) {
    auto m = ParsedMessage::Parse(Crlf(c.header + "\nbody\n"));
    EXPECT_EQ(c.expected, m->BodyStructure(false)) << c.header;
  }
}

TEST(MimeBodyStructure, EmptyMultipartGetsOneEmptyPart) {
  auto m = ParsedMessage::Parse(Crlf("Content-Type: multipart/mixed; boundary=x\n\nno parts\n"));
  EXPECT_EQ(R"((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed"))",
            m->BodyStructure(false));
  EXPECT_EQ(std::nullopt, m->SectionBytes(Sec({1})));
}

// ---- BODY[section] ------------------------------------------------------------

struct SectionCase {
  Section section;
  std::optional<std::string> expected;  // LF line ends, converted
};

void ExpectSections(const std::string& raw, const std::vector<SectionCase>& cases) {
  auto m = ParsedMessage::Parse(raw);
  for (const SectionCase& c : cases) {
    std::string name;
    for (uint32_t n : c.section.part) name += std::to_string(n) + ".";
    name += std::to_string(static_cast<int>(c.section.kind));
    std::optional<std::string> want;
    if (c.expected) want = Crlf(*c.expected);
    EXPECT_EQ(want, m->SectionBytes(c.section)) << name;
  }
}

// Expectations from imaptest fetch-body-mime.
TEST(MimeSection, ImaptestFetchBodyMime) {
  const std::string sub = R"(From: sub@domain.org
Date: Sun, 12 Aug 2012 12:34:56 +0300
Subject: submsg
Content-Type: multipart/alternative; boundary="sub1"

)";
  const std::string sub_text = R"(Sub MIME prologue
--sub1
Content-Type: text/html

<p>Hello world</p>

--sub1
Content-Type: text/plain

Hello another world

--sub1--
Sub MIME epilogue
)";
  const std::string root_header = R"(From: user@domain.org
Date: Sat, 24 Mar 2007 23:00:00 +0200
Mime-Version: 1.0
Content-Type: multipart/mixed; boundary="foo
 bar"

)";
  ExpectSections(kBodyMime,
                 {
                     {Sec({}, K::kHeader), root_header},
                     {Sec({1}), "hello\n"},
                     {Sec({1}, K::kMime), "Content-Type: text/x-myown; charset=us-ascii\n\n"},
                     {Sec({2}), sub + sub_text},
                     {Sec({2}, K::kMime), "Content-Type: message/rfc822\n\n"},
                     {Sec({2}, K::kHeader), sub},
                     {Sec({2}, K::kHeaderFields, {"from", "subject", "X-foo"}),
                      "From: sub@domain.org\nSubject: submsg\n\n"},
                     {Sec({2}, K::kHeaderFieldsNot, {"from", "subject", "X-foo"}),
                      "Date: Sun, 12 Aug 2012 12:34:56 +0300\n"
                      "Content-Type: multipart/alternative; boundary=\"sub1\"\n\n"},
                     {Sec({2}, K::kText), sub_text},
                     {Sec({2, 1}, K::kMime), "Content-Type: text/html\n\n"},
                     {Sec({2, 1}), "<p>Hello world</p>\n"},
                     {Sec({2, 2}, K::kMime), "Content-Type: text/plain\n\n"},
                     {Sec({2, 2}), "Hello another world\n"},
                     // Parts that do not exist, and HEADER/TEXT of a non-message part.
                     {Sec({3}), std::nullopt},
                     {Sec({0}), std::nullopt},
                     {Sec({2, 3}), std::nullopt},
                     {Sec({1, 1}), "hello\n"},  // Dovecot: a last ".1" on a leaf is the leaf
                     {Sec({1}, K::kHeader), std::nullopt},
                     {Sec({2, 1}, K::kText), std::nullopt},
                 });
  auto m = ParsedMessage::Parse(kBodyMime);
  EXPECT_EQ(kBodyMime, *m->SectionBytes(Sec({})));
  EXPECT_EQ(kBodyMime.substr(Crlf(root_header).size()), *m->SectionBytes(Sec({}, K::kText)));
}

// Expectations from imaptest fetch-body-message-rfc822-mime.
TEST(MimeSection, ImaptestMessageRfc822Digest) {
  const std::string text = R"(prologue

--foo 

From: m1@example.com
Subject: m1

m1 body

--foo 
X-Mime: m2 header

From: m2@example.com
Subject: m2

m2 body

--foo--

epilogue
)";
  const std::string header = R"(From: sub@domain.org
Date: Sun, 12 Aug 2012 12:34:56 +0300
Subject: submsg
Content-Type: multipart/digest; boundary="foo"

)";
  ExpectSections(kDigest, {
                              {Sec({}, K::kText), header + text},
                              {Sec({1}), header + text},
                              {Sec({1}, K::kHeader), header},
                              {Sec({1}, K::kText), text},
                              {Sec({1, 1}), "From: m1@example.com\nSubject: m1\n\nm1 body\n"},
                              {Sec({1, 1}, K::kMime), "\n"},
                              {Sec({1, 1}, K::kHeader), "From: m1@example.com\nSubject: m1\n\n"},
                              {Sec({1, 1}, K::kText), "m1 body\n"},
                              {Sec({1, 2}), "From: m2@example.com\nSubject: m2\n\nm2 body\n"},
                              {Sec({1, 2}, K::kMime), "X-Mime: m2 header\n\n"},
                              {Sec({1, 2}, K::kHeader), "From: m2@example.com\nSubject: m2\n\n"},
                              {Sec({1, 2}, K::kText), "m2 body\n"},
                              {Sec({1, 3}), std::nullopt},
                          });
}

// Expectations from imaptest fetch-body-message-rfc822-x2.
TEST(MimeSection, ImaptestMessageRfc822Twice) {
  const std::string inner = R"(From: sub@domain.org
Date: Sun, 12 Aug 2012 12:34:56 +0300
Subject: submsg

Hello world
)";
  const std::string middle_header = R"(From: user2@domain.org
Date: Fri, 23 Mar 2007 11:22:33 +0200
Mime-Version: 1.0
Content-Type: message/rfc822

)";
  ExpectSections(kRfc822x2, {
                                {Sec({}, K::kText), middle_header + inner},
                                {Sec({1}), middle_header + inner},
                                {Sec({1, 1}), inner},
                                {Sec({1}, K::kHeader), middle_header},
                                {Sec({1}, K::kText), inner},
                                {Sec({1, 1, 1}), "Hello world\n"},
                                {Sec({1, 1}, K::kHeader),
                                 "From: sub@domain.org\nDate: Sun, 12 Aug 2012 12:34:56 +0300\n"
                                 "Subject: submsg\n\n"},
                                {Sec({1, 1}, K::kText), "Hello world\n"},
                                {Sec({1, 1, 1, 1}), std::nullopt},
                                {Sec({2}), std::nullopt},
                            });
}

// Expectations from imaptest fetch-body (single part message).
TEST(MimeSection, ImaptestFetchBodyHeaderFields) {
  const std::string raw = Crlf(R"(From: User1 <user1@domain.org>
Date: Sat, 24 Mar 2007 23:00:00 +0200
Subject: s1

body1

)");
  ExpectSections(
      raw, {
               {Sec({}, K::kText), "body1\n\n"},
               {Sec({1}), "body1\n\n"},
               {Sec({1}, K::kMime),
                "From: User1 <user1@domain.org>\nDate: Sat, 24 Mar 2007 23:00:00 "
                "+0200\nSubject: s1\n\n"},
               {Sec({}, K::kHeaderFields, {"from"}), "From: User1 <user1@domain.org>\n\n"},
               {Sec({}, K::kHeaderFields, {"from", "from"}), "From: User1 <user1@domain.org>\n\n"},
               {Sec({}, K::kHeaderFields, {"FROM", "subject"}),
                "From: User1 <user1@domain.org>\nSubject: s1\n\n"},
               {Sec({}, K::kHeaderFieldsNot, {"date"}),
                "From: User1 <user1@domain.org>\nSubject: s1\n\n"},
               {Sec({}, K::kHeaderFields, {"xyz"}), "\n"},
               {Sec({2}), std::nullopt},
           });
}

TEST(MimeSection, HeaderFieldsKeepFoldingAndOrder) {
  const std::string raw =
      Crlf("Received: from a\n\tby b\nSubject: one\n  two\nX-A: 1\nreceived: from c\n\nbody\n");
  ExpectSections(raw,
                 {
                     {Sec({}, K::kHeaderFields, {"received"}),
                      "Received: from a\n\tby b\nreceived: from c\n\n"},
                     {Sec({}, K::kHeaderFieldsNot, {"received", "x-a"}), "Subject: one\n  two\n\n"},
                 });
}

TEST(MimeSection, BareLfAndHeaderOnlyMessages) {
  // Bare LF line ends: offsets follow the stored bytes.
  const std::string lf = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nA\n--b--\n";
  auto m = ParsedMessage::Parse(lf);
  EXPECT_EQ("A", *m->SectionBytes(Sec({1})));
  EXPECT_EQ("\n", *m->SectionBytes(Sec({1}, K::kMime)));
  EXPECT_EQ(R"((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0) "mixed"))",
            m->BodyStructure(false));
  // No empty line: everything is header, the body is empty.
  auto h = ParsedMessage::Parse("Subject: x\r\nFrom: a@b");
  EXPECT_EQ("Subject: x\r\nFrom: a@b", *h->SectionBytes(Sec({}, K::kHeader)));
  EXPECT_EQ("", *h->SectionBytes(Sec({}, K::kText)));
  // HEADER.FIELDS adds one CRLF; .NOT adds the empty line only if there is one.
  EXPECT_EQ("From: a@b\r\n", *h->SectionBytes(Sec({}, K::kHeaderFields, {"from"})));
  EXPECT_EQ("Subject: x\r\n\r\n", *h->SectionBytes(Sec({}, K::kHeaderFields, {"subject"})));
  EXPECT_EQ("Subject: x\r\n", *h->SectionBytes(Sec({}, K::kHeaderFieldsNot, {"from"})));
  EXPECT_EQ(R"(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0))",
            h->BodyStructure(false));
}

TEST(MimeSection, BoundaryRules) {
  // Outer boundaries end inner parts; boundaries match as prefixes (longest
  // wins); a missing close delimiter runs to the end.
  const std::string raw = Crlf(R"(Content-Type: multipart/mixed; boundary=out

--out
Content-Type: multipart/alternative; boundary=in

--in

inner part
--out
Content-Type: text/plain

second   
--out-and-more

third
--outer

not a boundary of its own
)");
  auto m = ParsedMessage::Parse(raw);
  EXPECT_EQ("inner part", *m->SectionBytes(Sec({1, 1})));
  EXPECT_EQ(Crlf("--in\n\ninner part"), *m->SectionBytes(Sec({1})));
  EXPECT_EQ("second   ", *m->SectionBytes(Sec({2})));
  EXPECT_EQ("third", *m->SectionBytes(Sec({3})));
  EXPECT_EQ(Crlf("not a boundary of its own\n"), *m->SectionBytes(Sec({4})));
  EXPECT_EQ(std::nullopt, m->SectionBytes(Sec({5})));
  // A boundary line ends a header that has no empty line.
  auto h =
      ParsedMessage::Parse(Crlf("Content-Type: multipart/mixed; boundary=x\n\n--x\n"
                                "Content-Type: text/html\n--x\n\nsecond\n--x--\n"));
  EXPECT_EQ("", *h->SectionBytes(Sec({1})));
  EXPECT_EQ("Content-Type: text/html", *h->SectionBytes(Sec({1}, K::kMime)));
  EXPECT_EQ("second", *h->SectionBytes(Sec({2})));
  // The whole line is matched (Dovecot 2.3.19): an inner boundary "a--"
  // takes "--a--" from the outer "a".
  auto c =
      ParsedMessage::Parse(Crlf("Content-Type: multipart/mixed; boundary=a\n\n--a\n"
                                "Content-Type: multipart/mixed; boundary=\"a--\"\n\n"
                                "--a--\nepilogue\n"));
  EXPECT_EQ(Crlf("--a--\nepilogue\n"), *c->SectionBytes(Sec({1})));
  EXPECT_EQ(Crlf("epilogue\n"), *c->SectionBytes(Sec({1, 1}, K::kMime)));
  EXPECT_EQ("", *c->SectionBytes(Sec({1, 1})));
  // Boundaries longer than 80 bytes still work (matched on their start).
  const std::string b(100, 'x');
  auto l = ParsedMessage::Parse(Crlf("Content-Type: multipart/mixed; boundary=" + b + "\n\n--" + b +
                                     "\n\none\n--" + b + "\n\ntwo\n--" + b + "--\n"));
  EXPECT_EQ("one", *l->SectionBytes(Sec({1})));
  EXPECT_EQ("two", *l->SectionBytes(Sec({2})));
}

// Verified against Dovecot 2.3.19: line breaks next to boundaries.
TEST(MimeSection, LineBreaksAroundBoundariesLikeDovecot) {
  // A header directly followed by the ending boundary gives its last line
  // break to the boundary; an enclosing message/rfc822 body keeps it.
  auto m =
      ParsedMessage::Parse(Crlf("Content-Type: multipart/mixed; boundary=s\n\n--s\nX-A: 1\n\n--s\n"
                                "Content-Type: message/rfc822\n\nX-B: 2\n\n--s\n\n--s--\n"));
  ExpectSections(Crlf("Content-Type: multipart/mixed; boundary=s\n\n--s\nX-A: 1\n\n--s\n"
                      "Content-Type: message/rfc822\n\nX-B: 2\n\n--s\n\n--s--\n"),
                 {
                     {Sec({1}, K::kMime), "X-A: 1\n"},
                     {Sec({1}), ""},
                     {Sec({2}), "X-B: 2\n\n"},
                     {Sec({2}, K::kHeader), "X-B: 2\n"},
                     {Sec({3}, K::kMime), ""},
                 });
  EXPECT_EQ(
      R"((("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)("message" "rfc822" NIL NIL NIL "7bit" 10 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) 2)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed"))",
      m->BodyStructure(false));
  // A header cut short by a boundary still makes a message or a multipart.
  auto c = ParsedMessage::Parse(
      Crlf("Content-Type: multipart/mixed; boundary=s\n\n--s\nContent-Type: message/rfc822\n"
           "--s\nContent-Type: multipart/mixed; boundary=t\n--s--\n"));
  EXPECT_EQ(
      R"((("message" "rfc822" NIL NIL NIL "7bit" 0 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) 0)(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) "mixed") "mixed"))",
      c->BodyStructure(false));
  EXPECT_EQ("Content-Type: message/rfc822", *c->SectionBytes(Sec({1}, K::kMime)));
  // The line break ending a close delimiter is not taken again by an outer
  // boundary on the next line.
  auto r = ParsedMessage::Parse(
      Crlf("Content-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: message/rfc822\n\n"
           "Content-Type: multipart/alternative; boundary=n\n\n--n\n\nA\n--n--\n--m--\n"));
  EXPECT_EQ(Crlf("Content-Type: multipart/alternative; boundary=n\n\n--n\n\nA\n--n--\n"),
            *r->SectionBytes(Sec({1})));
  EXPECT_EQ("A", *r->SectionBytes(Sec({1, 1})));
}

// ---- SEARCH support -----------------------------------------------------------

TEST(MimeSearch, QuotedPrintableAndRfc2047Decoding) {
  auto m = ParsedMessage::Parse(kLatin1Qp);
  EXPECT_EQ(std::vector<std::string>{"Caf\xc3\xa9 cr\xc3\xa8me"}, m->HeaderValues("SUBJECT"));
  EXPECT_EQ(std::vector<std::string>{}, m->HeaderValues("cc"));
  const std::string body = m->DecodedBodyText();
  EXPECT_NE(std::string::npos, body.find("Un caf\xc3\xa9 cr\xc3\xa8me, s'il vous pla\xc3\xae"
                                         "t. Tr\xc3\xa8s chaud."))
      << body;
  EXPECT_TRUE(ContainsFolded(body, "CAF\xc3\x89 CR\xc3\x88ME"));
  EXPECT_FALSE(ContainsFolded(body, "caf=E9"));
  EXPECT_TRUE(ContainsFolded(m->DecodedHeaders(), "subject: caf\xc3\xa9"));
  EXPECT_EQ(std::vector<std::string>{"Andr\xc3\xa9 Pirard <PIRARD@vm1.ulg.ac.be>"},
            m->AddressHeaderValues("from"));
  ASSERT_EQ(1u, m->Mailboxes("to").size());
  EXPECT_EQ("Bob \"the\" Builder", m->Mailboxes("to")[0].display_name);
  EXPECT_EQ("bob", m->Mailboxes("to")[0].local_part);
  EXPECT_EQ("example.org", m->Mailboxes("to")[0].domain);
}

TEST(MimeSearch, Base64AndCharsetsOfEveryTextPart) {
  auto m = ParsedMessage::Parse(Crlf(R"(Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain; charset=koi8-r
Content-Transfer-Encoding: base64

8NLJ18XULCDt6fIhILPMy8E=
--b
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: BASE64

R3LDvMOfZSBhdXMgS8O2bG4NCg==
--b
Content-Type: image/png
Content-Transfer-Encoding: base64

bmVlZGxl
--b
Content-Type: text/plain; charset=x-unknown-charset

plain ascii
--b--
)"));
  const std::string body = m->DecodedBodyText();
  EXPECT_TRUE(ContainsFolded(body, "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"))  // привет
      << body;
  EXPECT_TRUE(ContainsFolded(body, "\xd0\xbc\xd0\xb8\xd1\x80"));  // мир (МИР in the text)
  EXPECT_TRUE(ContainsFolded(body,
                             "GR\xc3\x9c\xc3\x9f"
                             "E AUS K\xc3\x96LN"));
  EXPECT_TRUE(ContainsFolded(body, "plain ascii"));
  EXPECT_FALSE(ContainsFolded(body, "needle"));  // image parts are not text
}

TEST(MimeSearch, AddressesAsImaptestSearchAddresses) {
  struct Case {
    std::string from;
    std::vector<std::string> matching;
  };
  const std::vector<Case> cases = {
      {"user-from@domain.org", {"user-from@domain.org", "ser-fro"}},
      {"RealFrom <user-from@domain.org>", {"user-from@domain.org", "realfrom", "ealfro"}},
      {"<user-from (comment)@ (comment) domain.org>", {"user-from@domain.org"}},
      {"user-from@domain.org (RealFrom)", {"user-from@domain.org", "realfrom"}},
      {"groupname: groupuser1@domain.org, groupuser2@domain.org;,\n  groupname2: g3@d.org;",
       {"groupname", "groupname2", "groupuser2@domain.org", "g3@d.org"}},
  };
  for (const Case& c : cases) {
    auto m = ParsedMessage::Parse(Crlf("From: " + c.from + "\n\nbody\n"));
    std::vector<std::string> values = m->AddressHeaderValues("From");
    ASSERT_EQ(1u, values.size()) << c.from;
    for (const std::string& needle : c.matching) {
      EXPECT_TRUE(ContainsFolded(values[0], needle)) << values[0] << " / " << needle;
    }
  }
  auto m = ParsedMessage::Parse(Crlf("From: a@b.c\n\nbody\n"));
  EXPECT_TRUE(m->AddressHeaderValues("to").empty());
  // Raw 8-bit names are made UTF-8 (here Latin-1 ö).
  auto raw8 = ParsedMessage::Parse(Crlf("From: J\xf6rg <j@x.org>\n\nbody\n"));
  EXPECT_EQ(std::vector<std::string>{"J\xc3\xb6rg <j@x.org>"}, raw8->AddressHeaderValues("from"));
}

TEST(MimeSearch, SentDate) {
  struct Case {
    std::string date;
    std::optional<int64_t> utc_ms;
    std::optional<int64_t> local_ms;
  };
  const std::vector<Case> cases = {
      // 2007-03-24T21:00:00Z; wall clock 23:00 on the 24th.
      {"Sat, 24 Mar 2007 23:00:00 +0200", 1174770000000, 1174777200000},
      {"Sun, 25 Mar 2007 04:00:00 +0300", 1174784400000, 1174795200000},
      {"Mon, 29 Oct 2007 00:00:00 -0200", 1193623200000, 1193616000000},
      {"not a date", std::nullopt, std::nullopt},
  };
  for (const Case& c : cases) {
    auto m = ParsedMessage::Parse(Crlf("Date: " + c.date + "\n\nbody\n"));
    EXPECT_EQ(c.utc_ms, m->SentDateMs()) << c.date;
    EXPECT_EQ(c.local_ms, m->SentDateLocalMs()) << c.date;
  }
  EXPECT_EQ(std::nullopt, ParsedMessage::Parse("Subject: x\r\n\r\n")->SentDateMs());
}

TEST(MimeSearch, ContainsFolded) {
  struct Case {
    std::string haystack, needle;
    bool match;
  };
  const std::vector<Case> cases = {
      {"Hello Beautiful World", "o beautiful w", true},
      {"Hello", "", true},
      {"", "x", false},
      {"abc", "abcd", false},
      {"\xc3\x84rger \xc3\x9c"
       "ber",
       "\xc3\xa4RGER \xc3\xbc"
       "BER",
       true},  // Ärger Über
      {"\xce\xa3\xce\x9f\xce\xa6\xce\x99\xce\x91", "\xcf\x83\xce\xbf\xcf\x86",
       true},  // ΣΟΦΙΑ / σοφ
      {"\xd0\x9c\xd0\x9e\xd0\xa1\xd0\x9a\xd0\x92\xd0\x90", "\xd0\xbc\xd0\xbe\xd1\x81",
       true},  // МОСКВА
      {"\xc5\x81\xc3\xb3"
       "d\xc5\xba",
       "\xc5\x82\xc3\x93"
       "D\xc5\xb9",
       true},                                       // Łódź / łÓDŹ
      {"caf\xe9 (latin-1 byte)", "CAF\xe9", true},  // invalid UTF-8 compares bytewise
      {"caf\xe9", "CAF\xc3\xa9", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.match, ContainsFolded(c.haystack, c.needle)) << c.haystack << " / " << c.needle;
  }
}

// ---- malformed input ----------------------------------------------------------

// Balanced parentheses outside quoted strings and literals: a cheap check
// that an IMAP response fragment is well formed.
bool WellFormed(std::string_view s) {
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '"') {
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\') ++i;
      }
      if (i >= s.size()) return false;
    } else if (c == '{') {
      size_t close = s.find("}\r\n", i);
      if (close == std::string_view::npos) return false;
      size_t n = std::stoul(std::string(s.substr(i + 1, close - i - 1)));
      i = close + 2 + n;
      if (i >= s.size()) return false;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth < 0) return false;
    }
  }
  return depth == 0;
}

// Everything a FETCH or SEARCH may ask of a message, with invariants.
void ExerciseAll(const std::string& raw) {
  auto m = ParsedMessage::Parse(raw);
  ASSERT_EQ(raw, m->raw());
  EXPECT_TRUE(WellFormed(m->Envelope())) << m->Envelope();
  EXPECT_TRUE(WellFormed(m->BodyStructure(false))) << m->BodyStructure(false);
  EXPECT_TRUE(WellFormed(m->BodyStructure(true))) << m->BodyStructure(true);
  EXPECT_EQ(raw, m->SectionBytes(Sec({})));
  for (std::vector<uint32_t> part : std::vector<std::vector<uint32_t>>{
           {}, {1}, {2}, {1, 1}, {1, 2}, {2, 1}, {1, 1, 1}, {3, 2, 1}}) {
    for (K kind :
         {K::kAll, K::kHeader, K::kText, K::kMime, K::kHeaderFields, K::kHeaderFieldsNot}) {
      auto bytes = m->SectionBytes(Sec(part, kind, {"subject", "content-type"}));
      if (bytes &&
          (kind == K::kAll || kind == K::kHeader || kind == K::kText || kind == K::kMime)) {
        EXPECT_NE(std::string::npos, raw.find(*bytes));
      }
    }
  }
  m->HeaderValues("subject");
  m->AddressHeaderValues("from");
  m->Mailboxes("to");
  m->DecodedHeaders();
  m->DecodedBodyText();
  m->SentDateMs();
}

// Parenthesis depth outside strings and literals.
int MaxDepth(std::string_view s) {
  int depth = 0, max = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '"') {
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\') ++i;
      }
    } else if (s[i] == '{') {
      size_t close = s.find("}\r\n", i);
      i = close + 2 + std::stoul(std::string(s.substr(i + 1, close - i - 1)));
    } else if (s[i] == '(') {
      max = std::max(max, ++depth);
    } else if (s[i] == ')') {
      --depth;
    }
  }
  return max;
}

// As Dovecot: 99 levels are parsed, the 100th multipart or message is
// reported as application/octet-stream.
TEST(MimeMalformed, DeepNestingIsCapped) {
  std::string multi, message;
  for (int i = 0; i < 1000; ++i) {
    multi += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\r\n\r\n--b" +
             std::to_string(i) + "\r\n";
    message += "Content-Type: message/rfc822\r\n\r\n";
  }
  multi += "\r\ninnermost\r\n";
  message += "Subject: innermost\r\n\r\nbody\r\n";
  for (const std::string& raw : {multi, message}) {
    ExerciseAll(raw);
    std::string body = ParsedMessage::Parse(raw)->BodyStructure(true);
    EXPECT_NE(std::string::npos, body.find(R"(("application" "octet-stream")"));
    EXPECT_LE(MaxDepth(body), 2 * 101);
    EXPECT_GE(MaxDepth(body), 100);
  }
  // (No boundary here is a prefix of another, unlike b1 and b11 above.)
  std::string small;
  for (int i = 0; i < 5; ++i) {
    small += "Content-Type: multipart/mixed; boundary=x" + std::to_string(i) + "z\r\n\r\n--x" +
             std::to_string(i) + "z\r\n";
  }
  small += "\r\ninnermost\r\n";
  auto m = ParsedMessage::Parse(small, {.max_depth = 3});
  const std::string body = m->BodyStructure(false);
  EXPECT_NE(std::string::npos,
            body.find(R"(((("application" "octet-stream" ("boundary" "x2z") NIL NIL "7bit" )"))
      << body;
  EXPECT_EQ(std::string::npos, body.find("x3z")) << body;
  EXPECT_TRUE(m->SectionBytes(Sec({1, 1})));
  EXPECT_EQ(std::nullopt, m->SectionBytes(Sec({1, 1, 2})));
}

TEST(MimeMalformed, BrokenInputs) {
  constexpr char kNulBytes[] = "Subject: nul \0 byte\r\n\r\nbody \0\xff\xfe\r\n";
  const std::vector<std::string> inputs = {
      "",
      "\r\n",
      "\r\n\r\n\r\n",
      "no header at all, no line end",
      std::string(kNulBytes, sizeof(kNulBytes) - 1),
      "Content-Type: multipart/mixed; boundary=\"unterminated\r\n\r\n--unterminated\r\n",
      "Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n--\r\n",
      "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x",
      "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n",
      "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x--\r\n--x\r\n",
      "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: "
      "base64\r\n\r\nU3ViamVjdDogeA==\r\n",
      "From: ((((((((unterminated comment\r\nTo: \"open quote\r\nCc: <<<@@@>>>,,,;;;:::\r\n\r\n",
      "From: a@b, , ,\r\nTo: g: a@b, (c) ; d:;\r\nBcc: @a,@b:c@d, <@x\r\nReply-To: <>\r\n\r\n",
      "Content-Type: text/plain; charset=\"no such charset\"\r\nContent-Transfer-Encoding: "
      "quoted-printable\r\n\r\n=ZZ=\r\n=C3=\r\n=\r\n",
      "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!====***\r\n",
      "Content-Type: text/plain; name*0=a; name*2=c; name*=; =; name*9999999999=x\r\n\r\n",
      "Date: Mon, 99 Foo 99999 99:99:99 +9999\r\nSubject: =?utf-8?b?////?= =?x?q?=\r\n\r\n",
      " leading continuation\r\n\tmore\r\nno colon line\r\n: empty name\r\n\r\nbody",
      std::string(10000, '\n'),
      "Content-Type: multipart/mixed; boundary=a\r\n\r\n" + std::string(2000, '-') + "\r\n--a\r\n",
  };
  for (const std::string& raw : inputs) {
    SCOPED_TRACE(raw.substr(0, 80));
    ExerciseAll(raw);
  }
}

TEST(MimeMalformed, EveryTruncationAndRandomMutation) {
  for (const std::string* sample : {&kBodyMime, &kDigest, &kMixed}) {
    for (size_t n = 0; n <= sample->size(); ++n) {
      SCOPED_TRACE(n);
      ExerciseAll(sample->substr(0, n));
    }
  }
  std::mt19937 rng(12345);
  constexpr char kAlphabet[] = "-\r\n\"()<>@,;:=?\\ \t\x80\xff\0abc";
  const std::string alphabet(kAlphabet, sizeof(kAlphabet) - 1);
  for (int round = 0; round < 300; ++round) {
    std::string raw = kBodyMime;
    int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % raw.size();
      raw[at] = alphabet[rng() % alphabet.size()];
    }
    SCOPED_TRACE(round);
    ExerciseAll(raw);
  }
}

}  // namespace
}  // namespace porcupine::mime
