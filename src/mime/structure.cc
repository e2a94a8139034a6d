#include "mime/structure.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace porcupine::mime {
namespace {

constexpr size_t kNone = static_cast<size_t>(-1);
constexpr size_t kMaxBoundaryLength = 80;  // RFC 2046 allows 70

// Where a part ended: at a boundary line, or at the end of the input.
struct Stop {
  size_t line_begin = kNone;  // start of the boundary line; kNone at end of input
  size_t next_line = kNone;   // start of the line after it
  size_t boundary = kNone;    // index into the scanner's active boundaries
  bool close = false;         // "--boundary--"
  // The line break before the boundary line was already taken (it ended a
  // close delimiter line, or a header cut short by this boundary), so the
  // parts ending here keep theirs.
  bool keep_newline = false;
  bool AtEnd() const { return line_begin == kNone; }
};

class Scanner {
 public:
  Scanner(std::string_view raw, const StructureLimits& limits) : raw_(raw), limits_(limits) {}

  // Parses the part whose header starts at `begin`; *stop is where it ended.
  void ParsePart(size_t begin, int depth, const Part* parent, Part* part, Stop* stop);

 private:
  size_t LineEnd(size_t pos) const {
    size_t eol = raw_.find('\n', pos);
    return eol == std::string_view::npos ? raw_.size() : eol + 1;
  }
  bool MatchBoundary(size_t line_begin, Stop* stop) const;
  // `after_boundary`: `from` follows a boundary line (an epilogue).
  Stop ScanToBoundary(size_t from, bool after_boundary = false) const;
  size_t BeforeNewline(size_t line_begin, size_t floor) const;
  size_t BodyEnd(const Stop& stop, size_t body_begin) const;
  void ParseHeader(size_t begin, bool in_multipart, Part* part, Stop* stop, bool* stopped);
  void ParseMultipart(int depth, const std::string* boundary, Part* part, Stop* stop);
  void CountLines(Part* part) const;
  Part::Kind KindOf(int depth, Part* part) const;
  void ParseBody(int depth, Part* part, Stop* stop);

  std::string_view raw_;
  const StructureLimits& limits_;
  std::vector<std::string> boundaries_;  // in effect, outermost first
  size_t parts_ = 1;
};

bool Scanner::MatchBoundary(size_t line_begin, Stop* stop) const {
  if (boundaries_.empty() || parts_ >= limits_.max_parts) return false;
  if (raw_.size() - line_begin < 2 || raw_[line_begin] != '-' || raw_[line_begin + 1] != '-') {
    return false;
  }
  size_t next = LineEnd(line_begin);
  std::string_view text = raw_.substr(line_begin + 2, next - line_begin - 2);
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  // (Dovecot 2.3.19 matches the whole rest of the line: an inner boundary
  // "b--" takes the line "--b--" from an outer "b". Later versions strip a
  // trailing "--" first; the reference server does not.)
  std::string_view find = text;
  size_t best = kNone;
  for (size_t i = boundaries_.size(); i-- > 0;) {
    const std::string& b = boundaries_[i];
    if (b.size() > find.size() || find.compare(0, b.size(), b) != 0) continue;
    if (best == kNone || boundaries_[best].size() < b.size()) best = i;
    if (b.size() == find.size()) break;
  }
  if (best == kNone) return false;
  size_t len = boundaries_[best].size();
  stop->line_begin = line_begin;
  stop->next_line = next;
  stop->boundary = best;
  stop->close = text.size() >= len + 2 && text[len] == '-' && text[len + 1] == '-';
  return true;
}

Stop Scanner::ScanToBoundary(size_t from, bool after_boundary) const {
  Stop stop;
  if (boundaries_.empty()) return stop;
  for (size_t pos = from; pos < raw_.size(); pos = LineEnd(pos)) {
    if (MatchBoundary(pos, &stop)) {
      stop.keep_newline = after_boundary && pos == from;
      return stop;
    }
  }
  return stop;
}

size_t Scanner::BeforeNewline(size_t line_begin, size_t floor) const {
  size_t end = line_begin;
  if (end > floor && raw_[end - 1] == '\n') --end;
  if (end > floor && raw_[end - 1] == '\r') --end;
  return end;
}

// The line break before a boundary line belongs to the boundary, unless it
// was taken already (see Stop::keep_newline).
size_t Scanner::BodyEnd(const Stop& stop, size_t body_begin) const {
  if (stop.AtEnd()) return raw_.size();
  if (stop.line_begin <= body_begin) return body_begin;
  if (stop.keep_newline) return stop.line_begin;
  return BeforeNewline(stop.line_begin, body_begin);
}

void Scanner::ParseHeader(size_t begin, bool in_multipart, Part* part, Stop* stop, bool* stopped) {
  size_t pos = begin;
  *stopped = false;
  part->body_begin = raw_.size();
  while (pos < raw_.size()) {
    size_t next = LineEnd(pos);
    size_t len = next - pos;
    if ((len == 1 && raw_[pos] == '\n') ||
        (len == 2 && raw_[pos] == '\r' && raw_[pos + 1] == '\n')) {
      part->body_begin = next;
      break;
    }
    if (MatchBoundary(pos, stop)) {
      // The header ends here; its last line break belongs to the boundary
      // (and to the bodies of the enclosing parts).
      part->body_begin = BeforeNewline(pos, begin);
      stop->keep_newline = true;
      *stopped = true;
      break;
    }
    pos = next;
  }
  part->fields = SplitHeaderFields(raw_.substr(begin, part->body_begin - begin));
  // Content-* fields count only in MIME parts: inside a multipart, or with
  // MIME-Version or Content-Type (Dovecot's non-strict rule).
  bool mime = in_multipart;
  for (const HeaderField& f : part->fields) {
    if (EqualsIgnoreCase(f.name, "mime-version") || EqualsIgnoreCase(f.name, "content-type")) {
      mime = true;
    }
  }
  if (mime) part->content = ParseContentInfo(part->fields);
}

void Scanner::ParseMultipart(int depth, const std::string* boundary, Part* part, Stop* stop) {
  if (!boundary) {  // a multipart without boundary has no parts
    *stop = ScanToBoundary(part->body_begin);
    return;
  }
  // Dovecot truncates boundaries; prefix matching keeps them working.
  boundaries_.push_back(boundary->substr(0, kMaxBoundaryLength));
  const size_t mine = boundaries_.size() - 1;
  *stop = ScanToBoundary(part->body_begin);
  while (!stop->AtEnd() && stop->boundary == mine && !stop->close) {
    ++parts_;
    Part child;
    size_t child_begin = stop->next_line;
    ParsePart(child_begin, depth + 1, part, &child, stop);
    part->children.push_back(std::move(child));
  }
  boundaries_.pop_back();
  if (!stop->AtEnd() && stop->boundary == mine) {
    *stop = ScanToBoundary(stop->next_line, true);  // the epilogue runs to an outer boundary
  }
}

// What the part's type makes it, within the limits (a multipart or message
// nested too deep is a truncated leaf).
Part::Kind Scanner::KindOf(int depth, Part* part) const {
  const ContentInfo& ct = part->content;
  // Dovecot expands max_depth - 1 levels below the root.
  const bool can_nest = depth + 1 < limits_.max_depth && parts_ < limits_.max_parts;
  const bool multipart = EqualsIgnoreCase(ct.type, "multipart") && !ct.subtype.empty();
  const bool message =
      ct.present ? EqualsIgnoreCase(ct.type, "message") && EqualsIgnoreCase(ct.subtype, "rfc822")
                 : part->digest_child;
  if (!multipart && !message) return Part::Kind::kLeaf;
  if (!can_nest) {
    part->truncated = true;
    return Part::Kind::kLeaf;
  }
  return multipart ? Part::Kind::kMultipart : Part::Kind::kMessage;
}

void Scanner::ParseBody(int depth, Part* part, Stop* stop) {
  switch (part->kind) {
    case Part::Kind::kMultipart:
      ParseMultipart(depth, part->content.Param("boundary"), part, stop);
      break;
    case Part::Kind::kMessage:
      ++parts_;
      part->children.emplace_back();
      ParsePart(part->body_begin, depth + 1, part, &part->children.back(), stop);
      break;
    case Part::Kind::kLeaf:
      *stop = ScanToBoundary(part->body_begin);
      break;
  }
}

void Scanner::ParsePart(size_t begin, int depth, const Part* parent, Part* part, Stop* stop) {
  part->header_begin = begin;
  const bool in_multipart = parent && parent->kind == Part::Kind::kMultipart;
  part->digest_child = in_multipart && EqualsIgnoreCase(parent->content.subtype, "digest");
  bool stopped = false;
  ParseHeader(begin, in_multipart, part, stop, &stopped);
  part->kind = KindOf(depth, part);
  if (!stopped) {
    ParseBody(depth, part, stop);
  } else if (part->kind == Part::Kind::kMessage) {
    // A header cut short by a boundary still makes a message (empty) or a
    // multipart (without parts), as in Dovecot.
    ++parts_;
    Part& child = part->children.emplace_back();
    child.header_begin = child.body_begin = child.body_end = part->body_begin;
  }
  if (!stopped && part->kind != Part::Kind::kMessage && !stop->AtEnd() &&
      stop->line_begin == part->body_begin && part->body_begin > part->header_begin) {
    // Ended right after the empty line of its header: as with a header cut
    // short, that line break belongs to the boundary, not to the header.
    part->body_begin = BeforeNewline(part->body_begin, part->header_begin);
    stop->keep_newline = true;
    stopped = true;
  }
  part->body_end = stopped ? part->body_begin : BodyEnd(*stop, part->body_begin);
  CountLines(part);
}

// Each byte is counted once: a part's count is its children's plus the bytes
// between them (their headers, boundary lines, prologue, epilogue), so deep
// nesting costs no more than flat.
void Scanner::CountLines(Part* part) const {
  auto count = [&](size_t begin, size_t end) {
    if (end <= begin) return uint32_t{0};
    return static_cast<uint32_t>(std::count(raw_.data() + begin, raw_.data() + end, '\n'));
  };
  uint32_t lines = 0;
  size_t cursor = part->body_begin;
  for (const Part& child : part->children) {
    lines += count(cursor, child.body_begin) + child.body_lines;
    cursor = child.body_end;
  }
  part->body_lines = lines + count(cursor, part->body_end);
}

}  // namespace

bool Part::IsText() const {
  if (truncated) return false;
  if (!content.present) return !digest_child;
  return EqualsIgnoreCase(content.type, "text");
}

Part ParseStructure(std::string_view raw, const StructureLimits& limits) {
  Part root;
  Stop stop;
  Scanner(raw, limits).ParsePart(0, 0, nullptr, &root, &stop);
  return root;
}

}  // namespace porcupine::mime
