#include "protocol/imap/parser.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <utility>
#include <vector>

#include "core/invariant.h"

// How the reader works. Input is consumed a whole line at a time: nothing is
// tokenized until the line's LF has arrived, so the events never depend on
// how the bytes were split. A line that ends with a literal announcement
// parks the command (its open lists live in lists_, an explicit stack, so
// deep nesting never recurses) while the literal's octets are collected,
// then the following line continues the same command.
//
// After an error the rest of the command is skipped: its line is already
// consumed, and if that line ended in a non-synchronizing literal {n+} the
// client sends those n octets and another line regardless, so they are
// discarded too (and so on). A rejected synchronizing literal is never sent.
//
// Choices the grammar leaves open:
//  - Every line ends in CRLF (RFC 3501 §2.2): a line ended by a bare LF is
//    rejected, a command line with BAD (the command does not run), a raw
//    line as an error that ends the exchange. Tolerating LF would let a
//    proxy or filter in front of us disagree with us about where a command
//    ends. Literal octets are not lines: a bare LF inside one is data.
//    While a rejected command is being skipped, its lines may end either way.
//  - An empty line (CRLF) between commands is ignored; a line of spaces is a
//    missing tag. Runs of spaces between arguments and a trailing space are
//    accepted.
//  - "UID" folds only before COPY, MOVE, FETCH, STORE, SEARCH, EXPUNGE (an
//    atom, any case); otherwise the command is "UID" with its arguments.
//  - Literal octets are not checked (NUL is accepted; ~{n} literal8 is read
//    as a literal).
//  - Raw-line mode takes effect between commands only.
//  - kFatal is final: every later Next() returns it again.
//  - An overlong line's BAD carries the tag if it appears within the first
//    max_line bytes. A line longer than max(max_command, max_line) is kFatal
//    as soon as that many bytes have been seen.
//  - A {n+} over max_command (but within max_literal) is kError, and its
//    octets are skipped; only {n+} over max_literal is kFatal.
//  - The limits are checked before the literal check (SetLiteralCheck).
//  - An atom's '[' without a matching ']' on the same line is an ordinary
//    character (imaptest's `atoms`: "select ...|[}" is a name, not BAD).
//  - ParseSequenceSet reads 4294967295 as 4294967294, never as kStar (see
//    parser.h).
namespace porcupine::imap {
namespace {

constexpr size_t kTailKeep = 64;  // enough for "{<20 digits>+}" and then some
constexpr const char* kBareLf = "line must end with CRLF";

bool IsCtl(unsigned char c) { return c < 0x20 || c == 0x7f; }

// Atoms as clients really send them: flags (\Seen), LIST patterns (* %), a
// stray ']' and 8-bit bytes are accepted too.
bool IsLenientAtomChar(char ch) {
  auto c = static_cast<unsigned char>(ch);
  return IsAtomChar(ch) || c >= 0x80 || c == '\\' || c == '*' || c == '%' || c == ']';
}

// tag = 1*<any ASTRING-CHAR except "+">
bool IsValidTag(std::string_view tag) {
  return !tag.empty() && std::all_of(tag.begin(), tag.end(), [](char c) {
    return (IsAtomChar(c) || c == ']') && c != '+';
  });
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

// Saturates instead of overflowing: any huge number is simply "too large".
uint64_t ParseSaturating(std::string_view digits) {
  uint64_t v = 0;
  for (char c : digits) {
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return UINT64_MAX;
    v = v * 10 + d;
  }
  return v;
}

// The size of the non-synchronizing literal "{n+}" that ends `line`, if any.
std::optional<uint64_t> TrailingNonSyncLiteral(std::string_view line) {
  if (line.size() < 4 || line.back() != '}' || line[line.size() - 2] != '+') return std::nullopt;
  size_t end = line.size() - 2;
  size_t begin = end;
  while (begin > 0 && IsDigit(line[begin - 1])) --begin;
  if (begin == end || begin == 0 || line[begin - 1] != '{') return std::nullopt;
  return ParseSaturating(line.substr(begin, end - begin));
}

void FoldUid(Command* cmd) {
  static constexpr std::array<std::string_view, 6> kUidCommands = {"COPY",  "MOVE",   "FETCH",
                                                                   "STORE", "SEARCH", "EXPUNGE"};
  if (cmd->name != "UID" || cmd->args.empty() || cmd->args[0].kind != Token::Kind::kAtom) return;
  std::string sub = Upper(cmd->args[0].text);
  if (std::find(kUidCommands.begin(), kUidCommands.end(), sub) == kUidCommands.end()) return;
  cmd->name = std::move(sub);
  cmd->uid = true;
  cmd->args.erase(cmd->args.begin());
}

// What tokenizing one line found at its end.
struct Scan {
  enum class Kind { kEnd, kLiteral, kError };
  Kind kind = Kind::kEnd;
  uint64_t literal_size = 0;
  bool literal_plus = false;
  const char* error = nullptr;
};

// Tokenizes the arguments on one line into the open lists of a command.
// Error returns are short reasons for the BAD response; nullptr means fine.
class Tokenizer {
 public:
  Tokenizer(std::string_view line, size_t pos, const ParserLimits& limits,
            std::vector<std::vector<Token>>* lists, bool* need_space, size_t* tokens)
      : line_(line),
        pos_(pos),
        limits_(limits),
        lists_(*lists),
        need_space_(*need_space),
        tokens_(*tokens) {}

  Scan Run() {
    while (pos_ < line_.size()) {
      char c = line_[pos_];
      const char* err = nullptr;
      if (c == ' ') {
        // Lenient: runs of spaces and a trailing space are accepted.
        ++pos_;
        need_space_ = false;
        continue;
      }
      if (c == ')') {
        err = Close();
      } else if (need_space_) {
        err = "missing space between arguments";
      } else if (c == '(') {
        err = Open();
      } else if (c == '"') {
        err = Quoted();
      } else if (c == '{' || (c == '~' && pos_ + 1 < line_.size() && line_[pos_ + 1] == '{')) {
        return Literal();
      } else {
        err = Atom();
      }
      if (err != nullptr) return Error(err);
    }
    return Scan{};
  }

 private:
  static Scan Error(const char* why) {
    Scan s;
    s.kind = Scan::Kind::kError;
    s.error = why;
    return s;
  }

  bool CountToken() { return ++tokens_ <= limits_.max_tokens; }

  const char* Add(Token t) {
    if (!CountToken()) return "too many arguments";
    lists_.back().push_back(std::move(t));
    need_space_ = true;
    return nullptr;
  }

  const char* Open() {
    if (lists_.size() > static_cast<size_t>(std::max(limits_.max_depth, 0))) {
      return "lists nested too deeply";
    }
    if (!CountToken()) return "too many arguments";
    lists_.emplace_back();
    ++pos_;
    return nullptr;
  }

  const char* Close() {
    if (lists_.size() <= 1) return "unexpected ')'";
    Token list;
    list.kind = Token::Kind::kList;
    list.items = std::move(lists_.back());
    lists_.pop_back();
    lists_.back().push_back(std::move(list));
    need_space_ = true;
    ++pos_;
    return nullptr;
  }

  const char* Quoted() {
    Token t;
    t.kind = Token::Kind::kQuoted;
    for (++pos_; pos_ < line_.size();) {
      char c = line_[pos_++];
      if (c == '"') return Add(std::move(t));
      if (c == '\\') {
        if (pos_ == line_.size()) break;
        c = line_[pos_++];
        if (c != '"' && c != '\\') return "invalid escape in quoted string";
      } else if (c == '\0' || c == '\r' || c == '\n') {
        return "invalid character in quoted string";
      }
      t.text += c;
    }
    return "unterminated quoted string";
  }

  // An atom, where "[...]" is taken verbatim (section specs hold spaces and
  // parentheses), so BODY[HEADER.FIELDS (A B)]<0.10> is a single atom. A
  // '[' that no ']' closes before the end of the line is an ordinary atom
  // character (mailbox names may hold one).
  const char* Atom() {
    size_t start = pos_;
    while (pos_ < line_.size() && line_[pos_] != ' ' && line_[pos_] != ')') {
      char c = line_[pos_];
      if (c == '[') {
        if (const char* err = Bracket()) return err;
        continue;
      }
      if (!IsLenientAtomChar(c)) return "invalid character in atom";
      ++pos_;
    }
    Token t;
    t.text = std::string(line_.substr(start, pos_ - start));
    return Add(std::move(t));
  }

  // REQUIRES: line_[pos_] == '['.
  const char* Bracket() {
    size_t close = MatchingBracket(pos_);
    if (close == std::string_view::npos) {
      ++pos_;
      return nullptr;
    }
    for (; pos_ <= close; ++pos_) {
      if (IsCtl(static_cast<unsigned char>(line_[pos_]))) return "invalid character in atom";
    }
    return nullptr;
  }

  // The ']' that closes the '[' at `open` ("[...]" nests), or npos when the
  // line ends first. All of the line's brackets are matched at its first
  // '[' in one pass, so a line of unmatched '[' stays linear.
  // REQUIRES: calls in ascending `open` order.
  size_t MatchingBracket(size_t open) {
    if (!brackets_matched_) {
      brackets_matched_ = true;
      std::vector<size_t> stack;  // indexes into brackets_ of the unclosed '['
      for (size_t i = open; i < line_.size(); ++i) {
        if (line_[i] == '[') {
          stack.push_back(brackets_.size());
          brackets_.push_back({i, std::string_view::npos});
        } else if (line_[i] == ']' && !stack.empty()) {
          brackets_[stack.back()].second = i;
          stack.pop_back();
        }
      }
    }
    while (next_bracket_ < brackets_.size() && brackets_[next_bracket_].first < open) {
      ++next_bracket_;
    }
    if (next_bracket_ == brackets_.size() || brackets_[next_bracket_].first != open) {
      PORCUPINE_INVARIANT(false, "MatchingBracket called out of order");
      return std::string_view::npos;
    }
    return brackets_[next_bracket_].second;
  }

  // literal = "{" number ["+"] "}" CRLF; literal8 = "~{" ... likewise.
  Scan Literal() {
    if (line_[pos_] == '~') ++pos_;
    ++pos_;
    size_t digits = pos_;
    while (pos_ < line_.size() && IsDigit(line_[pos_])) ++pos_;
    Scan s;
    s.kind = Scan::Kind::kLiteral;
    s.literal_size = ParseSaturating(line_.substr(digits, pos_ - digits));
    bool no_digits = pos_ == digits;
    if (pos_ < line_.size() && line_[pos_] == '+') {
      s.literal_plus = true;
      ++pos_;
    }
    if (no_digits || pos_ == line_.size() || line_[pos_] != '}') return Error("invalid literal");
    if (++pos_ != line_.size()) return Error("literal must end the line");
    if (!CountToken()) return Error("too many arguments");
    return s;
  }

  std::string_view line_;
  size_t pos_;
  const ParserLimits& limits_;
  std::vector<std::vector<Token>>& lists_;
  bool& need_space_;
  size_t& tokens_;
  // (position of '[', position of its ']' or npos), ascending; see MatchingBracket.
  std::vector<std::pair<size_t, size_t>> brackets_;
  bool brackets_matched_ = false;
  size_t next_bracket_ = 0;
};

}  // namespace

// RFC 3501 ATOM-CHAR: any 7-bit CHAR except atom-specials.
bool IsAtomChar(char ch) {
  auto c = static_cast<unsigned char>(ch);
  if (c >= 0x80 || IsCtl(c) || c == ' ') return false;
  switch (c) {
    case '(':
    case ')':
    case '{':
    case '%':
    case '*':
    case '"':
    case '\\':
    case ']':
      return false;
    default:
      return true;
  }
}

bool Token::IsNil() const {
  return kind == Kind::kAtom && text.size() == 3 && Upper(text) == "NIL";
}

CommandReader::CommandReader(const ParserLimits& limits) : limits_(limits) {}

void CommandReader::Feed(std::string_view bytes) { buf_.append(bytes); }

CommandReader::Event CommandReader::Next() {
  Compact();
  for (;;) {
    if (phase_ == Phase::kFatal) return Event::kFatal;
    if (phase_ == Phase::kLiteral || phase_ == Phase::kSkipLiteral) {
      if (!ConsumeLiteral()) return Event::kNeedInput;
      continue;
    }
    std::string_view line;
    size_t consumed = 0;
    bool bare_lf = false;
    std::optional<Event> event;
    switch (TakeLine(&line, &consumed, &bare_lf)) {
      case LineStatus::kNeedInput:
        return Event::kNeedInput;
      case LineStatus::kRunaway:
        return Fatal("line too long");
      case LineStatus::kOverlong:
        event = OnOverlong();
        break;
      case LineStatus::kLine:
        event = OnLine(line, consumed, bare_lf);
        break;
    }
    if (event) return *event;
  }
}

void CommandReader::Compact() {
  // Drop consumed bytes only when they dominate, so Next() stays amortised O(1).
  if (pos_ == buf_.size()) {
    if (buf_.capacity() > 2 * limits_.max_line) std::string().swap(buf_);
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > 0 && pos_ * 2 >= buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
}

// Finds the next LF-terminated line. A line whose length (terminator
// included) exceeds max_line is discarded as it arrives, never buffered.
CommandReader::LineStatus CommandReader::TakeLine(std::string_view* line, size_t* consumed,
                                                  bool* bare_lf) {
  if (!discarding_) {
    size_t lf = buf_.find('\n', pos_ + scanned_);
    size_t len = lf == std::string::npos ? buffered() : lf + 1 - pos_;
    if (lf == std::string::npos && len < limits_.max_line) {
      scanned_ = len;
      return LineStatus::kNeedInput;
    }
    scanned_ = 0;
    if (lf != std::string::npos && len <= limits_.max_line) {
      size_t end = lf;
      *bare_lf = !(end > pos_ && buf_[end - 1] == '\r');
      if (!*bare_lf) --end;
      *line = std::string_view(buf_.data() + pos_, end - pos_);
      *consumed = len;
      pos_ = lf + 1;
      return LineStatus::kLine;
    }
    StartDiscard();
  }
  return Discard();
}

void CommandReader::StartDiscard() {
  discarding_ = true;
  discarded_ = 0;
  tail_.clear();
  discard_raw_ = RawLineExpected();
  if (phase_ != Phase::kLine || in_command_ || discard_raw_) return;
  // The first max_line bytes are always here (and hold no LF): if they hold
  // the tag, the BAD response can carry it.
  std::string_view head(buf_.data() + pos_, std::min(buffered(), limits_.max_line));
  size_t sp = head.find(' ');
  if (sp != std::string_view::npos && IsValidTag(head.substr(0, sp))) tag_ = head.substr(0, sp);
}

CommandReader::LineStatus CommandReader::Discard() {
  size_t lf = buf_.find('\n', pos_);
  size_t end = lf == std::string::npos ? buf_.size() : lf;
  std::string_view chunk(buf_.data() + pos_, end - pos_);
  if (chunk.size() >= kTailKeep) {
    tail_ = chunk.substr(chunk.size() - kTailKeep);
  } else {
    tail_ += chunk;
    if (tail_.size() > kTailKeep) tail_.erase(0, tail_.size() - kTailKeep);
  }
  discarded_ += chunk.size();
  pos_ = end;
  // A line that runs past a whole command's worth of bytes is not a client
  // we can expect to resynchronize with.
  if (discarded_ > std::max<uint64_t>(limits_.max_command, limits_.max_line)) {
    return LineStatus::kRunaway;
  }
  if (lf == std::string::npos) return LineStatus::kNeedInput;
  pos_ = lf + 1;
  discarding_ = false;
  if (!tail_.empty() && tail_.back() == '\r') tail_.pop_back();
  return LineStatus::kOverlong;
}

// Moves literal octets out of the buffer; true once the literal is complete.
bool CommandReader::ConsumeLiteral() {
  size_t take = static_cast<size_t>(std::min<uint64_t>(buffered(), literal_left_));
  if (phase_ == Phase::kLiteral) literal_.text.append(buf_, pos_, take);
  pos_ += take;
  literal_left_ -= take;
  if (literal_left_ > 0) return false;
  if (phase_ == Phase::kLiteral) {
    lists_.back().push_back(std::move(literal_));
    literal_ = Token{};
    need_space_ = true;
    phase_ = Phase::kLine;
  } else {
    phase_ = Phase::kSkipLine;
  }
  return true;
}

bool CommandReader::RawLineExpected() const {
  return raw_mode_ && phase_ == Phase::kLine && !in_command_;
}

std::optional<CommandReader::Event> CommandReader::OnLine(std::string_view line, size_t consumed,
                                                          bool bare_lf) {
  if (phase_ == Phase::kSkipLine) {
    if (!SkipTrailingLiteral(line)) return Fatal("literal too large");
    return std::nullopt;
  }
  if (RawLineExpected()) {
    if (bare_lf) {
      error_ = kBareLf;
      error_tag_.clear();
      return Event::kError;
    }
    raw_line_ = line;
    return Event::kRawLine;
  }
  return ProcessLine(line, consumed, bare_lf);
}

std::optional<CommandReader::Event> CommandReader::OnOverlong() {
  if (discard_raw_) {
    error_ = "line too long";
    error_tag_.clear();
    return Event::kError;
  }
  std::string tail = std::move(tail_);
  tail_.clear();
  if (phase_ == Phase::kSkipLine) {
    if (!SkipTrailingLiteral(tail)) return Fatal("literal too large");
    return std::nullopt;
  }
  return Fail("line too long", tail);
}

std::optional<CommandReader::Event> CommandReader::ProcessLine(std::string_view line,
                                                               size_t consumed, bool bare_lf) {
  size_t pos = 0;
  if (!in_command_) {
    if (line.empty()) {
      if (bare_lf) return Fail(kBareLf, line);
      return std::nullopt;  // Not in the grammar; ignored, as most servers do.
    }
    if (const char* err = StartCommand(line, &pos)) return Fail(err, line);
  }
  if (bare_lf) return Fail(kBareLf, line);
  command_bytes_ += consumed;
  if (command_bytes_ > limits_.max_command) return Fail("command too long", line);
  Scan scan = Tokenizer(line, pos, limits_, &lists_, &need_space_, &tokens_).Run();
  switch (scan.kind) {
    case Scan::Kind::kError:
      return Fail(scan.error, line);
    case Scan::Kind::kLiteral:
      return StartLiteral(scan.literal_size, scan.literal_plus, line);
    case Scan::Kind::kEnd:
      break;
  }
  if (lists_.size() > 1) return Fail("missing ')'", line);
  return Complete();
}

// Reads "tag SP name" at the start of a command's first line.
const char* CommandReader::StartCommand(std::string_view line, size_t* pos) {
  size_t sp = line.find(' ');
  std::string_view tag = line.substr(0, sp);
  if (!IsValidTag(tag)) return "missing or invalid tag";
  tag_ = tag;
  in_command_ = true;
  lists_.assign(1, {});
  if (sp == std::string_view::npos) return "missing command name";
  size_t start = sp + 1;
  size_t end = start;
  while (end < line.size() && IsAtomChar(line[end])) ++end;
  if (end == start) return "missing command name";
  if (end < line.size() && line[end] != ' ') return "invalid command name";
  name_ = Upper(line.substr(start, end - start));
  *pos = end;
  return nullptr;
}

std::optional<CommandReader::Event> CommandReader::StartLiteral(uint64_t size, bool plus,
                                                                std::string_view line) {
  if (size > limits_.max_literal) return Fail("literal too large", line);
  if (size > limits_.max_command - command_bytes_) return Fail("command too long", line);
  if (literal_check_ != nullptr && lists_.size() == 1) {
    if (const char* why = literal_check_(name_, lists_[0])) return Fail(why, line);
  }
  // The octets are reserved before any is buffered, and buffered in one
  // allocation of exactly that size: what is reserved is what is held.
  if (!held_.Resize(held_.bytes() + size)) return NoMemory(line);
  command_bytes_ += size;
  literal_ = Token{};
  literal_.text.reserve(size);
  literal_.kind = Token::Kind::kLiteral;
  literal_.literal_plus = plus;
  literal_left_ = size;
  phase_ = Phase::kLiteral;
  if (plus) return std::nullopt;
  return Event::kContinue;
}

// After a rejected line: arranges to skip the {n+} literal that ends it (and
// the line after it), or ends the command. False when that literal is too
// large to be worth skipping.
bool CommandReader::SkipTrailingLiteral(std::string_view line) {
  std::optional<uint64_t> size = TrailingNonSyncLiteral(line);
  if (!size) {
    Reset();
    return true;
  }
  if (*size > limits_.max_literal) return false;
  phase_ = Phase::kSkipLiteral;
  literal_left_ = *size;
  return true;
}

CommandReader::Event CommandReader::Fail(const char* why, std::string_view line) {
  error_tag_ = tag_;
  no_memory_ = false;
  // The command's literals so far are dropped now, not when its skipped
  // remainder has passed.
  lists_.clear();
  held_.Reset();
  if (!SkipTrailingLiteral(line)) return Fatal("literal too large");
  error_ = why;
  return Event::kError;
}

// The literal ending `line` does not fit in the budget: the command fails as
// over any other limit (a {n+} literal is skipped unread), flagged.
CommandReader::Event CommandReader::NoMemory(std::string_view line) {
  Event e = Fail("not enough memory for the literal now", line);
  no_memory_ = e == Event::kError;
  return e;
}

CommandReader::Event CommandReader::Fatal(const char* why) {
  error_ = why;
  error_tag_ = tag_;
  phase_ = Phase::kFatal;
  return Event::kFatal;
}

CommandReader::Event CommandReader::Complete() {
  command_ = Command{};
  command_.tag = std::move(tag_);
  command_.name = std::move(name_);
  command_.args = std::move(lists_[0]);
  FoldUid(&command_);
  command_held_ = std::exchange(held_, MemoryReservation(budget_));
  Reset();
  return Event::kCommand;
}

void CommandReader::DiscardInput() {
  std::string().swap(buf_);
  pos_ = 0;
  scanned_ = 0;
  discarding_ = false;
  discard_raw_ = false;
  discarded_ = 0;
  tail_.clear();
  Reset();
}

void CommandReader::Reset() {
  phase_ = Phase::kLine;
  in_command_ = false;
  tag_.clear();
  name_.clear();
  lists_.clear();
  need_space_ = false;
  tokens_ = 0;
  command_bytes_ = 0;
  literal_ = Token{};
  literal_left_ = 0;
  held_.Reset();  // the command's literals are gone (or were handed out)
}

namespace {

// seq-number = nz-number / "*"; nz-number is 1..2^32-1 without leading zeros.
std::optional<uint32_t> ParseSeqNumber(std::string_view text, size_t* pos) {
  if (*pos < text.size() && text[*pos] == '*') {
    ++*pos;
    return kStar;
  }
  if (*pos == text.size() || text[*pos] < '1' || text[*pos] > '9') return std::nullopt;
  uint64_t v = 0;
  while (*pos < text.size() && IsDigit(text[*pos])) {
    v = v * 10 + static_cast<uint64_t>(text[(*pos)++] - '0');
    if (v > 0xFFFFFFFFull) return std::nullopt;
  }
  // The largest number would read back as "*" (kStar); no message has it.
  return static_cast<uint32_t>(std::min<uint64_t>(v, kMaxSeqNumber));
}

}  // namespace

std::vector<SeqRange> ParseSequenceSet(std::string_view text) {
  std::vector<SeqRange> set;
  size_t pos = 0;
  for (;;) {
    std::optional<uint32_t> low = ParseSeqNumber(text, &pos);
    if (!low) return {};
    std::optional<uint32_t> high = low;
    if (pos < text.size() && text[pos] == ':') {
      ++pos;
      high = ParseSeqNumber(text, &pos);
      if (!high) return {};
    }
    set.push_back({std::min(*low, *high), std::max(*low, *high)});
    if (pos == text.size()) return set;
    if (text[pos++] != ',') return {};
  }
}

bool InSequenceSet(const std::vector<SeqRange>& set, uint32_t n, uint32_t largest) {
  for (const SeqRange& r : set) {
    uint32_t low = r.low == kStar ? largest : r.low;
    uint32_t high = r.high == kStar ? largest : r.high;
    if (low > high) std::swap(low, high);
    if (n >= low && n <= high) return true;
  }
  return false;
}

}  // namespace porcupine::imap
