// IDLE (RFC 2177): "+ idling", then the folder is re-read whenever the
// driver calls OnPoll (every Limits::idle_poll), and the changes go out as
// they are found; the raw line DONE ends it.
#include <string>

#include "protocol/imap/encode.h"
#include "protocol/imap/session_impl.h"

namespace porcupine::imap {

void Session::Impl::CmdIdle(Command& c) {
  if (!Arity(c, 0, 0, "IDLE")) return;
  FlushExpunges();  // IDLE may report expunges: held ones go first
  out += "+ idling\r\n";
  mode = Mode::kIdle;
  poll_due = false;
  reader.SetRawLineMode(true);
}

void Session::Impl::IdleLine(std::string_view line) {
  mode = Mode::kCommands;
  poll_due = false;
  reader.SetRawLineMode(false);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
  if (EqualsIgnoreCase(line, "DONE")) return Ok("IDLE terminated");
  Bad("Expected DONE");
}

// The IDLE command stays current across polls; Sync's continuation has
// nothing to answer.
void Session::Impl::IdlePoll() {
  if (!view) return;
  Sync([] {}, nullptr, /*idle_poll=*/true);
}

}  // namespace porcupine::imap
