// Table-driven tests of the IMAP wire forms (encode.h).
#include "protocol/imap/encode.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace porcupine::imap {
namespace {

TEST(EncodeStringTest, QuotedOrLiteral) {
  struct Case {
    std::string in;
    std::string out;
  };
  const Case kCases[] = {
      {"", "\"\""},
      {"INBOX", "\"INBOX\""},
      {"say \"hi\" \\o/", "\"say \\\"hi\\\" \\\\o/\""},
      {"two\r\nlines", "{10}\r\ntwo\r\nlines"},
      {"caf\xC3\xA9", "{5}\r\ncaf\xC3\xA9"},
      {std::string("a\0b", 3), std::string("{3}\r\na\0b", 8)},
      {std::string(256, 'x'), "\"" + std::string(256, 'x') + "\""},
      {std::string(257, 'x'), "{257}\r\n" + std::string(257, 'x')},
  };
  for (const Case& c : kCases) EXPECT_EQ(EncodeString(c.in), c.out) << c.in;
  std::string nil;
  AppendNString(&nil, std::nullopt);
  EXPECT_EQ(nil, "NIL");
}

TEST(EncodeNumberTest, Bounds) {
  EXPECT_EQ(ParseNumber32("0"), 0u);
  EXPECT_EQ(ParseNumber32("4294967295"), 4294967295u);
  EXPECT_FALSE(ParseNumber32("4294967296"));
  EXPECT_FALSE(ParseNumber32(""));
  EXPECT_FALSE(ParseNumber32("-1"));
  EXPECT_FALSE(ParseNumber32("1a"));
  EXPECT_EQ(ParseNumber64("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(ParseNumber64("18446744073709551616"));
}

TEST(EncodeFlagTest, Canonical) {
  EXPECT_EQ(CanonicalFlag("\\seen"), "\\Seen");
  EXPECT_EQ(CanonicalFlag("\\ANSWERED"), "\\Answered");
  EXPECT_EQ(CanonicalFlag("$Label1"), "$Label1");
  EXPECT_EQ(CanonicalFlag("NonJunk"), "NonJunk");
  EXPECT_FALSE(CanonicalFlag("\\Recent"));
  EXPECT_FALSE(CanonicalFlag("\\*"));
  EXPECT_FALSE(CanonicalFlag("\\Bogus"));
  EXPECT_FALSE(CanonicalFlag(""));
  EXPECT_FALSE(CanonicalFlag("a b"));
  EXPECT_FALSE(CanonicalFlag("a(b"));
  EXPECT_FALSE(CanonicalFlag("a]"));
  EXPECT_FALSE(CanonicalFlag("caf\xC3\xA9"));
}

TEST(EncodeFlagTest, SetOperations) {
  std::vector<std::string> f = {"\\Seen", "$Work"};
  EXPECT_TRUE(HasFlag(f, "\\SEEN"));
  EXPECT_TRUE(HasFlag(f, "$work"));
  EXPECT_FALSE(HasFlag(f, "\\Flagged"));
  AddFlag(&f, "\\seen");
  EXPECT_EQ(f.size(), 2u);
  AddFlag(&f, "\\Flagged");
  EXPECT_EQ(FlagList(f), "(\\Seen $Work \\Flagged)");
  RemoveFlag(&f, "$WORK");
  EXPECT_EQ(FlagList(f), "(\\Seen \\Flagged)");
  EXPECT_TRUE(SameFlags({"\\Seen", "\\Flagged"}, {"\\flagged", "\\Seen", "\\Seen"}));
  EXPECT_FALSE(SameFlags({"\\Seen"}, {"\\Seen", "x"}));
  EXPECT_EQ(FlagList({}), "()");
}

TEST(EncodeDateTest, InternalDate) {
  EXPECT_EQ(FormatInternalDate(0), "\"01-Jan-1970 00:00:00 +0000\"");
  EXPECT_EQ(FormatInternalDate(1709645400000), "\"05-Mar-2024 13:30:00 +0000\"");
  EXPECT_EQ(FormatInternalDate(951782400000), "\"29-Feb-2000 00:00:00 +0000\"");
  EXPECT_EQ(FormatInternalDate(-1000), "\"31-Dec-1969 23:59:59 +0000\"");
}

TEST(EncodeDateTest, InternalDateInTheZoneGiven) {
  const int64_t t = 1767254400000;  // 2026-01-01 08:00:00 UTC
  EXPECT_EQ(FormatInternalDate(t, 120), "\"01-Jan-2026 10:00:00 +0200\"");
  EXPECT_EQ(FormatInternalDate(t, -90), "\"01-Jan-2026 06:30:00 -0130\"");
  EXPECT_EQ(FormatInternalDate(t, -9 * 60), "\"31-Dec-2025 23:00:00 -0900\"") << "the day before";
  EXPECT_EQ(FormatInternalDate(t, kMaxZoneMinutes), "\"05-Jan-2026 11:59:00 +9959\"");
  EXPECT_EQ(FormatInternalDate(t, kMaxZoneMinutes + 1), "\"01-Jan-2026 08:00:00 +0000\"")
      << "a zone no date-time can give is shown as UTC";
  // What APPEND was given comes back the same.
  for (const char* given : {"01-Jan-2026 10:00:00 +0200", "29-Feb-2024 23:59:59 -1100",
                            "01-Jan-1970 00:00:00 +0000", "31-Dec-1999 23:30:00 +0530"}) {
    std::optional<DateTime> d = ParseDateTime(given);
    ASSERT_TRUE(d) << given;
    EXPECT_EQ(FormatInternalDate(d->ms, d->zone), "\"" + std::string(given) + "\"");
  }
  // SEARCH BEFORE/ON/SINCE compare the day as written.
  EXPECT_EQ(LocalDayOf(t, -9 * 60), LocalDayOf(t, 0) - 1);
  EXPECT_EQ(LocalDayOf(t, 120), DayOf(t));
}

TEST(EncodeDateTest, ParseDateTime) {
  EXPECT_EQ(ParseDateTime("05-Mar-2024 14:30:00 +0100"), (DateTime{1709645400000, 60}));
  EXPECT_EQ(ParseDateTime(" 5-mar-2024 13:30:00 +0000"), (DateTime{1709645400000, 0}));
  EXPECT_EQ(ParseDateTime("5-MAR-2024 08:30:00 -0500"), (DateTime{1709645400000, -300}));
  EXPECT_EQ(ParseDateTime("01-Jan-1970 00:00:00 +0000"), (DateTime{0, 0}));
  for (const char* bad :
       {"", "05-Mar-2024", "05-Mar-2024 14:30:00", "32-Mar-2024 14:30:00 +0100",
        "29-Feb-2023 00:00:00 +0000", "05-Mrz-2024 14:30:00 +0100", "05-Mar-2024 24:00:00 +0100",
        "05-Mar-2024 14:30:00 0100", "05-Mar-24 14:30:00 +0100", "005-Mar-2024 14:30:00 +0100"}) {
    EXPECT_FALSE(ParseDateTime(bad)) << bad;
  }
}

TEST(EncodeDateTest, SearchDateAndDay) {
  EXPECT_EQ(ParseSearchDate("1-Jan-1970"), 0);
  EXPECT_EQ(ParseSearchDate("02-jan-1970"), 1);
  EXPECT_EQ(ParseSearchDate("29-Feb-2024"), DayOf(1709164800000));
  EXPECT_FALSE(ParseSearchDate("29-Feb-2023"));
  EXPECT_FALSE(ParseSearchDate("1-Jan-70"));
  EXPECT_FALSE(ParseSearchDate("\"1-Jan-1970\""));
  EXPECT_EQ(DayOf(86399999), 0);
  EXPECT_EQ(DayOf(86400000), 1);
  EXPECT_EQ(DayOf(-1), -1);
}

TEST(EncodeMailboxTest, ModifiedUtf7RoundTrip) {
  struct Case {
    std::string utf8;
    std::string wire;
  };
  const Case kCases[] = {
      {"INBOX", "INBOX"},
      {"A&B", "A&-B"},
      {"&", "&-"},
      {"Entw\xC3\xBC"
       "rfe",
       "Entw&APw-rfe"},
      {"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "&ZeVnLIqe-"},
      {"\xE2\x98\xBA!", "&Jjo-!"},
      {"\xE5\x8F\xB0\xE5\x8C\x97/\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "&U,BTFw-/&ZeVnLIqe-"},
      {"\xF0\x9F\x98\x80", "&2D3eAA-"},  // outside the BMP: a surrogate pair
      {"~peter/mail/\xE5\x8F\xB0\xE5\x8C\x97/\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
       "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},  // RFC 3501 §5.1.3's example
  };
  for (const Case& c : kCases) {
    EXPECT_EQ(EncodeMailboxName(c.utf8), c.wire) << c.wire;
    EXPECT_EQ(DecodeMailboxName(c.wire), c.utf8) << c.wire;
  }
}

TEST(EncodeMailboxTest, MalformedModifiedUtf7) {
  for (const char* bad : {"&", "&ZeVnLIqe", "&AGE-", "&Jjo", "&A-", "&2D0-", "&3gA-", "caf\xC3\xA9",
                          "tab\there", "&Zm9v/-", "&Jjr-"}) {
    EXPECT_FALSE(DecodeMailboxName(bad)) << bad;
  }
  // Invalid UTF-8 from the backend still encodes (as U+FFFD).
  EXPECT_EQ(EncodeMailboxName("a\xFF"), "a&,,0-");
  EXPECT_EQ(DecodeMailboxName("a&,,0-"), "a\xEF\xBF\xBD");
}

TEST(EncodeMailboxTest, NormalizeInbox) {
  EXPECT_EQ(NormalizeInbox("inbox"), "INBOX");
  EXPECT_EQ(NormalizeInbox("InBoX/Sub"), "INBOX/Sub");
  EXPECT_EQ(NormalizeInbox("INBOXES"), "INBOXES");
  EXPECT_EQ(NormalizeInbox("Archive/inbox"), "Archive/inbox");
}

TEST(EncodeSetTest, CompactSet) {
  EXPECT_EQ(CompactSet({}), "");
  EXPECT_EQ(CompactSet({5}), "5");
  EXPECT_EQ(CompactSet({1, 2, 3, 5, 7, 8}), "1:3,5,7:8");
  EXPECT_EQ(CompactSet({9, 3, 4}), "9,3:4");  // order kept
  EXPECT_EQ(CompactSet({4294967294u, 4294967295u}), "4294967294:4294967295");
}

}  // namespace
}  // namespace porcupine::imap
