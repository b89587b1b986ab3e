// Shell completion for `vm`, generated from the command's own CLI11 definition (the App that
// parses the command line), so that it offers exactly what this build accepts and cannot drift
// from it: `vm completion bash` prints it; the build writes it and `cmake --install` installs it.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace crosvisor::cli {

// A bash completion script for `vm` (a `_vm` function and `complete -F _vm vm`), from `app`:
// every visible subcommand (recursively), its options and flags (those it passes on to the
// commands above it included), and its positionals. Hidden subcommands and options (group "")
// are left out. Values complete by what the definition says of them:
//   - a set the option or operand is checked against (CLI::IsMember): its values;
//   - an operand named VM, or a type name VM: the user's VM names (`vm list -q`);
//   - an operand named FILE, OUT, PATH or DIR (or *_FILE(S) ...), a type name among those, or a
//     path validator (CLI::ExistingFile ...): file names;
//   - an option's TEXT (CLI11's name for strings and paths alike): file names;
//   - anything else (numbers, a type name such as NAME): nothing.
std::string bash_completion(const CLI::App& app);

}  // namespace crosvisor::cli
