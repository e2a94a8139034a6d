// IMAP wire forms (RFC 3501 §4, §5.1.3, §9) in both directions: strings,
// flag lists, dates, modified UTF-7 mailbox names and UID sets. Pure
// functions; no state.
//
// Thread-safety: every function is safe to call from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace porcupine::imap {

// ---- strings -------------------------------------------------------------

// Appends `s` as a quoted string when it is short 7-bit text without CR, LF
// or NUL (quotes and backslashes escaped), else as a literal "{n}\r\n<s>".
void AppendString(std::string* out, std::string_view s);
std::string EncodeString(std::string_view s);
// As AppendString, or NIL for nullopt.
void AppendNString(std::string* out, const std::optional<std::string>& s);

// True for ASCII letters case-insensitively equal.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
std::string ToUpper(std::string_view s);

// An RFC 3501 number (a 32-bit unsigned, or 64 with `wide`); nullopt on
// anything that is not all digits or overflows.
std::optional<uint32_t> ParseNumber32(std::string_view s);
std::optional<uint64_t> ParseNumber64(std::string_view s);

// ---- flags ---------------------------------------------------------------

// The five system flags a client may store, in their canonical spelling.
const std::vector<std::string>& SystemFlags();
// Canonical form of a client-supplied flag: system flags get their
// canonical case ("\seen" → "\Seen"); keywords (atoms without
// atom-specials and without a leading backslash) are kept as given.
// nullopt for "\Recent", "\*", an unknown "\Xxx" or a malformed keyword.
std::optional<std::string> CanonicalFlag(std::string_view flag);
// Flag comparisons are case-insensitive (RFC 3501 §2.3.2).
bool HasFlag(const std::vector<std::string>& flags, std::string_view flag);
// The same flags, ignoring order, case and duplicates.
bool SameFlags(const std::vector<std::string>& a, const std::vector<std::string>& b);
// "(\Seen $Label1)"; the flags as given, in order.
std::string FlagList(const std::vector<std::string>& flags);
void AddFlag(std::vector<std::string>* flags, std::string_view flag);     // if absent
void RemoveFlag(std::vector<std::string>* flags, std::string_view flag);  // every match

// ---- dates ---------------------------------------------------------------

// An instant and the zone it is written in (IMAP date-time, INTERNALDATE).
struct DateTime {
  int64_t ms = 0;    // since the epoch, UTC
  int32_t zone = 0;  // minutes east of UTC: "+0200" is 120, "-0130" is -90
  bool operator==(const DateTime&) const = default;
};
// The largest zone "+zzzz" can write: +9959.
constexpr int32_t kMaxZoneMinutes = 99 * 60 + 59;

// INTERNALDATE: "\"dd-Mon-yyyy hh:mm:ss +zzzz\"" (quotes included), the
// local time in `zone` (minutes east of UTC; UTC when beyond +-9959).
std::string FormatInternalDate(int64_t ms_since_epoch, int32_t zone = 0);
// APPEND's date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" (the day may be one
// digit or space-padded, month any case) → the instant and its zone.
std::optional<DateTime> ParseDateTime(std::string_view text);
// SEARCH's date: "d-Mon-yyyy" → days since 1970-01-01.
std::optional<int64_t> ParseSearchDate(std::string_view text);
// Days since 1970-01-01 of a UTC timestamp (floor).
int64_t DayOf(int64_t ms_since_epoch);
// The day of the date as written in `zone` (minutes east of UTC): what
// SEARCH BEFORE/ON/SINCE compare, "disregarding time and timezone".
int64_t LocalDayOf(int64_t ms_since_epoch, int32_t zone);

// ---- mailbox names -------------------------------------------------------

// Modified UTF-7 (RFC 3501 §5.1.3) → UTF-8. nullopt when malformed: 8-bit
// bytes, an unterminated or invalid base64 run, a printable ASCII character
// encoded in base64, bad surrogates, non-zero padding bits.
std::optional<std::string> DecodeMailboxName(std::string_view wire);
// UTF-8 → modified UTF-7; invalid UTF-8 bytes become U+FFFD.
std::string EncodeMailboxName(std::string_view utf8);
// "inbox" in any case becomes "INBOX", also as the first level of a
// hierarchy ("Inbox/x" → "INBOX/x"); other names are returned unchanged.
std::string NormalizeInbox(std::string name);

// ---- sets ----------------------------------------------------------------

// "1:3,7,9:10": runs of consecutive ascending numbers collapse into ranges;
// the order of `numbers` is kept (COPYUID pairs source and destination by
// position).
std::string CompactSet(const std::vector<uint32_t>& numbers);

}  // namespace porcupine::imap
