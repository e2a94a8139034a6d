#include "cli/cli.h"

int main(int argc, char** argv) { return porcupine::cli::Main(argc, argv); }
