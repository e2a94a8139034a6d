// IMAP4rev1 command reader (RFC 3501 §9 grammar, RFC 7888 LITERAL+): a pure,
// incremental tokenizer that turns client bytes into whole commands. It knows
// no command semantics beyond what the grammar needs to find where a command
// ends (literals); the session interprets the tokens.
//
// Feed() appends bytes; Next() returns the next event:
//   kNeedInput      nothing complete yet
//   kCommand        a whole command (its literals included) is in command()
//   kContinue       a synchronizing literal {n} was announced and accepted:
//                   the session must send "+ ..." before the client sends it
//                   (accepted: within the limits, and the literal check, if
//                   one is set, found nothing wrong with the command so far)
//   kError          the current command is malformed (a line ended by a
//                   bare LF instead of CRLF included) or over a limit:
//                   error() says why, error_tag() has its tag if it was read;
//                   no_memory() says the limit was the memory budget (below).
//                   The reader has already skipped the rest of the command
//                   (a rejected synchronizing literal is never sent by the
//                   client: the command simply ends at its line end).
//   kFatal          the stream cannot be resynchronized (a non-synchronizing
//                   literal over max_literal, a line over max_line without end
//                   in sight): answer BYE and close.
// In raw-line mode (SetRawLineMode(true)) every CRLF-terminated line is
// returned as kRawLine in raw_line() — for AUTHENTICATE responses and the
// DONE that ends IDLE; a line ended by a bare LF is a kError there.
//
// Tokens: atom, number (an atom of digits), quoted string, literal ({n},
// {n+}), NIL (an atom, recognised by the session), parenthesized list. An
// atom that contains '[' extends to the matching ']' verbatim, spaces and
// parentheses included, and may continue after it (so
// `BODY.PEEK[HEADER.FIELDS (From To)]<0.100>` is one atom), as the fetch-att
// and section grammar need.
//
// Memory (SetMemoryBudget): a literal's octets are reserved against the node's
// budget of message bytes in flight (core/memory_budget.h) when it is
// announced, before any of them is buffered, and the buffer is allocated at
// that size once. A literal that does not fit makes the command a kError with
// no_memory() true: a synchronizing literal gets no continuation (the client
// never sends it), a non-synchronizing one is read and discarded, never
// buffered. A whole command's reservation (all its literals) is handed out
// with it (TakeReservation) and given back when the caller drops it; a
// command that fails or is discarded gives its reservation back at once.
//
// Thread-safety: none.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/memory_budget.h"

namespace porcupine::imap {

// Every reader limit, named and defaulted (docs/config.md lists them).
struct ParserLimits {
  size_t max_line = 64 * 1024;         // one line (between literals), CRLF included
  uint64_t max_literal = 50ull << 20;  // one literal's octets (the APPEND message size)
  size_t max_command = 51ull << 20;    // one whole command, literals included
  int max_depth = 32;                  // nested parenthesized lists
  size_t max_tokens = 100000;          // tokens in one command
};

struct Token {
  enum class Kind { kAtom, kQuoted, kLiteral, kList };
  Kind kind = Kind::kAtom;
  std::string text;           // atom/quoted/literal value (quoted: unescaped)
  std::vector<Token> items;   // kList
  bool literal_plus = false;  // kLiteral announced as {n+}

  bool is_string() const { return kind == Kind::kQuoted || kind == Kind::kLiteral; }
  // An astring (atom, quoted or literal) — not a list.
  bool is_astring() const { return kind != Kind::kList; }
  bool IsNil() const;  // atom NIL, any case
};

struct Command {
  std::string tag;
  std::string name;         // upper-cased command name ("UID" is folded: see uid)
  bool uid = false;         // "UID FETCH" etc.: name is "FETCH", uid true
  std::vector<Token> args;  // the tokens after the name
};

class CommandReader {
 public:
  enum class Event { kNeedInput, kCommand, kContinue, kError, kFatal, kRawLine };

  explicit CommandReader(const ParserLimits& limits);

  void Feed(std::string_view bytes);
  Event Next();

  // Valid after the matching event, until the next Next().
  const Command& command() const { return command_; }
  Command TakeCommand() { return std::move(command_); }
  const std::string& error() const { return error_; }
  const std::string& error_tag() const { return error_tag_; }
  // After kError: the command was refused because its literal did not fit
  // in the memory budget (a temporary condition, not the client's fault).
  bool no_memory() const { return no_memory_; }
  // After kCommand: the reservation of the command's literal octets (empty
  // without a budget or literals). Call at most once per command.
  MemoryReservation TakeReservation() { return std::exchange(command_held_, MemoryReservation()); }
  const std::string& raw_line() const { return raw_line_; }

  void SetRawLineMode(bool on) { raw_mode_ = on; }

  // Drops every buffered byte and the command being read; raw-line mode
  // and the literal check stay (STARTTLS discards what was pipelined).
  void DiscardInput();

  // Judges a command when a literal is announced at its top level (not
  // inside a list): `name` is upper-cased (not folded: "UID ..." is "UID"),
  // `args` the arguments read so far, the literal not included. A reason
  // (a string with static storage) rejects the command right there, as a
  // syntax error does: kError with that reason; a synchronizing literal
  // gets no continuation (so the client never sends it), a
  // non-synchronizing one is skipped unread. nullptr accepts. It must be a
  // pure function of its arguments: it runs when the command is read,
  // possibly while earlier commands still run.
  using LiteralCheck = const char* (*)(std::string_view name, const std::vector<Token>& args);
  void SetLiteralCheck(LiteralCheck check) { literal_check_ = check; }

  // The node's budget of message bytes in flight; nullptr (the default):
  // literals are limited by ParserLimits alone. Must outlive the reader.
  // REQUIRES: called before the first Feed().
  void SetMemoryBudget(MemoryBudget* budget) {
    budget_ = budget;
    held_ = MemoryReservation(budget);
  }

  // Bytes fed but not consumed yet (for tests and backpressure).
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  // Where the reader is in the byte stream; see parser.cc.
  enum class Phase { kLine, kLiteral, kSkipLiteral, kSkipLine, kFatal };
  enum class LineStatus { kNeedInput, kLine, kOverlong, kRunaway };

  void Compact();
  LineStatus TakeLine(std::string_view* line, size_t* consumed, bool* bare_lf);
  LineStatus Discard();
  void StartDiscard();
  bool ConsumeLiteral();
  bool RawLineExpected() const;
  std::optional<Event> OnLine(std::string_view line, size_t consumed, bool bare_lf);
  std::optional<Event> OnOverlong();
  std::optional<Event> ProcessLine(std::string_view line, size_t consumed, bool bare_lf);
  const char* StartCommand(std::string_view line, size_t* pos);
  std::optional<Event> StartLiteral(uint64_t size, bool plus, std::string_view line);
  bool SkipTrailingLiteral(std::string_view line);
  Event Fail(const char* why, std::string_view line);
  Event Fatal(const char* why);
  Event NoMemory(std::string_view line);
  Event Complete();
  void Reset();

  ParserLimits limits_;
  std::string buf_;
  size_t pos_ = 0;
  bool raw_mode_ = false;
  LiteralCheck literal_check_ = nullptr;
  Command command_;
  std::string error_;
  std::string error_tag_;
  std::string raw_line_;
  bool no_memory_ = false;
  MemoryBudget* budget_ = nullptr;
  MemoryReservation held_;          // the literals of the command being read
  MemoryReservation command_held_;  // those of the command handed out last

  // The command being read.
  Phase phase_ = Phase::kLine;
  bool in_command_ = false;                // its tag has been read
  std::string tag_;                        // also the tag of a command being skipped
  std::string name_;                       // upper-cased
  std::vector<std::vector<Token>> lists_;  // open lists; lists_[0] holds the args
  bool need_space_ = false;                // a token just ended: SP or ')' must follow
  size_t tokens_ = 0;
  uint64_t command_bytes_ = 0;  // lines (terminators included) and literal octets
  Token literal_;               // the literal being received
  uint64_t literal_left_ = 0;   // octets still to receive (or to skip)
  size_t scanned_ = 0;          // bytes after pos_ known to hold no LF
  // An overlong line being discarded up to its LF.
  bool discarding_ = false;
  bool discard_raw_ = false;  // it is a raw line, not part of a command
  uint64_t discarded_ = 0;
  std::string tail_;  // its last bytes, to see whether it announced a literal
};

// RFC 3501 ATOM-CHAR: any 7-bit CHAR except atom-specials.
bool IsAtomChar(char ch);

// Sequence sets (RFC 3501 seq-number / sequence-set, "*" = largest, "$" not
// supported). Ranges are normalised low..high. Empty on a syntax error.
// The number 4294967295 (2^32-1, which RFC 3501 allows) reads as
// kMaxSeqNumber, 4294967294, so that it never turns into "*": no sequence
// number or UID that large exists here (UIDs stop well below 2^32-1), so
// "7:4294967295" names every message from 7 up and never the largest one
// below 7.
struct SeqRange {
  uint32_t low = 0;
  uint32_t high = 0;  // kStar in either field means "*"
};
constexpr uint32_t kStar = 0xFFFFFFFFu;
constexpr uint32_t kMaxSeqNumber = kStar - 1;
std::vector<SeqRange> ParseSequenceSet(std::string_view text);
// True when n is in the set, with "*" meaning `largest`.
bool InSequenceSet(const std::vector<SeqRange>& set, uint32_t n, uint32_t largest);

}  // namespace porcupine::imap
