// The `porcupine` command line: node, user, demo (DESIGN.md §8).
#pragma once

namespace porcupine::cli {

// Parses argv and runs the subcommand; returns the process exit status.
int Main(int argc, char** argv);

}  // namespace porcupine::cli
