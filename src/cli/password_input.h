// Where `porcupine user add` and `user passwd` get the password from, so that
// it need not be on the command line, where every user of the machine sees
// it (ps, /proc/PID/cmdline) and the shell keeps it in its history.
// docs/admin-api.md documents the choices.
#pragma once

#include <string>

#include "core/status.h"

namespace porcupine::cli {

// Longest password read from a file or the terminal (the node takes more
// over its API; nobody types that much).
constexpr size_t kMaxPasswordBytes = 4096;

// The first line of the file at `path`, without its line end (LF or CRLF);
// the rest of the file is ignored. The file must be a secret of its owner: a
// regular file that its group or other users may read, write or execute is
// refused (PermissionDenied, naming the mode and the chmod that fixes it),
// as ssh refuses such a private key and libpq such a .pgpass. Anything else
// (a pipe, /dev/stdin, a process substitution) is read as it is: it holds
// no secret at rest. InvalidArgument when the line is empty or longer than
// kMaxPasswordBytes; IoError when the file cannot be read.
Result<std::string> ReadPasswordFile(const std::string& path);

// Asks for a password on the terminal that standard input is: `prompt` goes
// to standard error, the answer is read with echo off, and with `confirm`
// asked a second time and compared. The terminal's modes are restored
// afterwards, also when a signal (Ctrl-C) ends the process meanwhile.
// FailedPrecondition when standard input is not a terminal; InvalidArgument
// when the answers differ, are empty or too long, or input ends first.
Result<std::string> PromptPassword(const std::string& prompt, bool confirm);

// The options of a command that sets a password.
struct PasswordOptions {
  bool password_given = false;  // --password was on the command line
  std::string password;         // its value (visible to other users: for scripts)
  std::string file;             // --password-file, "" = none
};

// The password from --password, else from --password-file, else from the
// prompt (for `address`) when standard input is a terminal. The error says
// what to give when there is none.
Result<std::string> ObtainPassword(const PasswordOptions& options, const std::string& address);

}  // namespace porcupine::cli
