// SEARCH programs (RFC 3501 §6.4.4): parsing the search keys into a tree
// and evaluating it against one message. Evaluation is three-valued so the
// session fetches a message's body only when the flags, dates, sizes and
// numbers alone cannot decide.
//
// RECENT, NEW (recent and unseen) and OLD (not recent) test
// SearchTarget::recent: \Recent is the session's, not a stored flag.
//
// Dates: BEFORE, ON and SINCE compare the internal date's calendar day in
// UTC (the backend keeps no zone for it); the SENT* keys compare the day
// written in the Date: header, its zone disregarded (RFC 3501 §6.4.4). A
// message without a usable Date: header matches no SENT* key.
//
// Thread-safety: every function is safe to call from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mime/message.h"
#include "protocol/imap/parser.h"
#include "protocol/imap/session.h"

namespace porcupine::imap {

struct SearchKey {
  enum class Op {
    kAll,
    kNone,
    kFlag,    // name set ("\\Recent": SearchTarget::recent)
    kNoFlag,  // name not set
    kHeader,  // header field `name` contains `value` (any value when empty)
    kBody,    // decoded body text contains `value`
    kText,    // decoded header or body contains `value`
    kBefore,  // internal date's day < number
    kOn,
    kSince,
    kSentBefore,  // Date: header's day
    kSentOn,
    kSentSince,
    kLarger,  // RFC822.SIZE > number
    kSmaller,
    kSeq,  // sequence number in `set`
    kUid,  // UID in `set`
    kNot,  // children[0]
    kOr,   // children[0] or children[1]
    kAnd,  // every child
  };
  Op op = Op::kAll;
  std::string name;
  std::string value;
  int64_t number = 0;
  bool address = false;  // kHeader: match the parsed addresses (FROM TO CC BCC)
  std::vector<SeqRange> set;
  std::vector<SearchKey> children;
};

struct SearchProgram {
  SearchKey root;           // kAnd of the top-level keys
  bool needs_body = false;  // some key reads headers or text
};

enum class SearchParseError { kNone, kSyntax, kBadCharset };

// Parses SEARCH's arguments ([CHARSET name] key...). Returns nullopt on an
// error, with *error set to kSyntax (*message says what) or kBadCharset
// (CHARSET other than UTF-8 or US-ASCII). REQUIRES: pointers non-null.
std::optional<SearchProgram> ParseSearch(const std::vector<Token>& args, SearchParseError* error,
                                         std::string* message);

// One message as the evaluator sees it.
struct SearchTarget {
  const MessageInfo* info = nullptr;
  uint32_t seq = 0;
  uint32_t max_seq = 0;  // "*" in sequence sets
  uint32_t max_uid = 0;  // "*" in UID sets
  bool recent = false;   // \Recent in this session
};

enum class Match { kNo, kYes, kNeedBody };

// kNeedBody only when `parsed` is null and a key that reads the message
// decides the outcome.
Match Evaluate(const SearchKey& key, const SearchTarget& target, const mime::ParsedMessage* parsed);

}  // namespace porcupine::imap
