// LIST and LSUB (RFC 3501 §6.3.8, §6.3.9) with CHILDREN (RFC 3348) and
// SPECIAL-USE (RFC 6154) attributes. The backend lists every folder; the
// session matches the pattern, adds the implied parents of nested names
// as \Noselect, and orders the answer INBOX first, then by name.
#include <map>
#include <string>
#include <vector>

#include "protocol/imap/encode.h"
#include "protocol/imap/session_impl.h"

namespace porcupine::imap {
namespace {

char Fold(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }

// RFC 3501 §6.3.8 wildcards: '*' matches anything, '%' anything but the
// delimiter. The first `ci` characters of `name` compare case-insensitively
// (INBOX is case-insensitive). Dynamic programming: no backtracking blowup.
bool Matches(std::string_view pat, std::string_view name, size_t ci) {
  const size_t n = name.size();
  std::vector<char> prev(n + 1, 0);
  std::vector<char> next(n + 1, 0);
  prev[0] = 1;
  for (char p : pat) {
    if (p == '*' || p == '%') {
      bool run = false;
      for (size_t j = 0; j <= n; ++j) {
        if (p == '%' && j > 0 && name[j - 1] == '/') run = false;
        run = run || prev[j];
        next[j] = run;
      }
    } else {
      next[0] = 0;
      for (size_t j = 1; j <= n; ++j) {
        char c = name[j - 1];
        bool eq = j - 1 < ci ? Fold(c) == Fold(p) : c == p;
        next[j] = prev[j - 1] && eq;
      }
    }
    prev.swap(next);
  }
  return prev[n] != 0;
}

size_t InboxPrefix(std::string_view name) {
  bool inbox = name.substr(0, 5) == "INBOX" && (name.size() == 5 || name[5] == '/');
  return inbox ? 5 : 0;
}

struct Entry {
  bool exists = false;  // a real (selectable or subscribed) name, not an implied parent
  bool has_children = false;
  std::string special_use;
};

// Every name plus the parents its hierarchy implies.
std::map<std::string, Entry> Collect(const std::vector<FolderInfo>& folders, bool lsub) {
  std::map<std::string, Entry> names;
  if (!lsub) names["INBOX"].exists = true;  // INBOX always exists (RFC 3501 §5.1)
  for (const FolderInfo& f : folders) {
    if (lsub && !f.subscribed) continue;
    std::string name = NormalizeInbox(f.name);
    Entry& e = names[name];
    e.exists = true;
    e.special_use = f.special_use;
    for (size_t slash = name.find('/'); slash != std::string::npos;
         slash = name.find('/', slash + 1)) {
      if (slash > 0) names[name.substr(0, slash)].has_children = true;
    }
  }
  return names;
}

std::string Attributes(const Entry& e, bool lsub) {
  std::vector<std::string> attrs;
  if (!e.exists) attrs.push_back("\\Noselect");
  if (!lsub) attrs.push_back(e.has_children ? "\\HasChildren" : "\\HasNoChildren");
  if (!lsub && e.exists && !e.special_use.empty()) attrs.push_back(e.special_use);
  return FlagList(attrs);
}

}  // namespace

void Session::Impl::CmdList(Command& c) { ListOrLsub(c, false); }

void Session::Impl::CmdLsub(Command& c) { ListOrLsub(c, true); }

void Session::Impl::ListOrLsub(Command& c, bool lsub) {
  const char* verb = lsub ? "LSUB" : "LIST";
  if (!Arity(c, 2, 2, std::string(verb) + " reference pattern")) return;
  if (!c.args[0].is_astring() || !c.args[1].is_astring()) {
    return Bad(std::string("Syntax: ") + verb + " reference pattern");
  }
  std::optional<std::string> ref = DecodeMailboxName(c.args[0].text);
  std::optional<std::string> pat = DecodeMailboxName(c.args[1].text);
  // A pattern that is not modified UTF-7 matches no folder.
  if (!ref || !pat) return Ok(lsub ? "LSUB completed" : "LIST completed");
  if (!lsub && pat->empty()) {
    // RFC 3501 §6.3.8: the delimiter and the root of the hierarchy.
    Untagged("LIST (\\Noselect) \"/\" \"\"");
    return Ok("LIST completed");
  }
  std::string pattern = *ref + *pat;
  Send<Result<std::vector<FolderInfo>>>(
      ListFolders{user}, [this, pattern, lsub](Result<std::vector<FolderInfo>>& r) {
        if (!r.ok()) return Fail(r.status());
        std::map<std::string, Entry> names = Collect(r.value(), lsub);
        // LSUB reports an unsubscribed parent only where '%' stops short
        // of its subscribed children (RFC 3501 §6.3.9).
        bool implied = !lsub || pattern.find('*') == std::string::npos;
        std::vector<std::string> lines;
        for (const auto& [name, e] : names) {
          if (!e.exists && !implied) continue;
          if (!Matches(pattern, name, InboxPrefix(name))) continue;
          std::string line =
              std::string(lsub ? "LSUB " : "LIST ") + Attributes(e, lsub) + " \"/\" ";
          AppendString(&line, EncodeMailboxName(name));
          if (name == "INBOX") {
            lines.insert(lines.begin(), std::move(line));
          } else {
            lines.push_back(std::move(line));
          }
        }
        for (const std::string& l : lines) Untagged(l);
        Ok(lsub ? "LSUB completed" : "LIST completed");
      });
}

}  // namespace porcupine::imap
