#include "cli/completion.hpp"

#include <algorithm>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

namespace crosvisor::cli {
namespace {

// The script completes the command `vm` (`complete -F _vm vm`), whatever the App's own name is:
// CLI11 names it after argv[0], e.g. build/vm.

// How a word completes, in the script's terms: "vm" (the user's VM names), "file", "none", or
// "words:A,B,C" (a fixed set).
using Kind = std::string;

// What one command accepts, as the script's _vm_spec sets it.
struct Command {
  std::string path;                      // its words after `vm`: "", "run", "fleet up"
  std::vector<std::string> subcommands;  // their names and aliases
  std::vector<std::string> aliases;      // ALIAS:NAME
  std::vector<std::string> options;      // the names it offers: -h --help ...
  std::vector<std::string> valued;       // the names of those that take a value, hidden ones too
  std::vector<std::string> seen;         // every name, hidden ones too
  std::vector<Kind> operands;            // in order; the last ends in "..." when it repeats
  // The value kinds of the command's own options (inherited ones are looked up above it).
  std::vector<std::pair<std::string, Kind>> values;
};

// `text` as one single-quoted shell word.
std::string shell_word(std::string_view text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string joined(const std::vector<std::string>& words, std::string_view separator = " ") {
  std::string out;
  for (const auto& word : words)
    out += (out.empty() ? "" : std::string(separator)) + word;
  return out;
}

// A value the script can offer as it is: no blanks, quotes, globs or separators.
bool plain_word(std::string_view word) {
  return !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("._+-/:@%^").find(c) != std::string_view::npos;
  });
}

bool hidden(const CLI::Option& option) {
  return option.get_group().empty();
}

// A visible, named subcommand (nameless ones are option groups: their options are their
// parent's).
bool visible_command(const CLI::App& app) {
  return !app.get_name().empty() && !app.get_group().empty() && !app.get_disabled();
}

// The options of `app` proper, hidden ones included: its own and those of its option groups.
std::vector<const CLI::Option*> own_options(const CLI::App& app) {
  auto options = app.get_options();
  for (const CLI::App* group :
       app.get_subcommands([](const CLI::App* sub) { return sub->get_name().empty(); })) {
    const auto more = own_options(*group);
    options.insert(options.end(), more.begin(), more.end());
  }
  return options;
}

std::vector<std::string> names_of(const CLI::Option& option) {
  std::vector<std::string> names;
  for (const auto& name : option.get_snames())
    names.push_back("-" + name);
  for (const auto& name : option.get_lnames())
    names.push_back("--" + name);
  return names;
}

bool takes_value(const CLI::Option& option) {
  return option.get_items_expected_max() > 0;
}

// The option's type as CLI11 shows it, split at ':': "TEXT", then one part per validator
// ("{full,none}" for IsMember, "FILE" for ExistingFile, ...).
std::vector<std::string> type_parts(const CLI::Option& option) {
  std::vector<std::string> parts;
  std::string type = option.get_type_name();
  // A set's values may hold ':' (none of vm's do): it is taken whole.
  while (!type.empty()) {
    if (type.front() == '{') {
      const auto end = type.find('}');
      parts.push_back(type.substr(0, end == std::string::npos ? type.size() : end + 1));
      type.erase(0, end == std::string::npos ? type.size() : end + 1);
      if (!type.empty() && type.front() == ':')
        type.erase(0, 1);
      continue;
    }
    const auto colon = type.find(':');
    parts.push_back(type.substr(0, colon));
    type.erase(0, colon == std::string::npos ? type.size() : colon + 1);
  }
  return parts;
}

// "words:A,B" when the option is checked against a set (CLI::IsMember) whose values the script
// can offer, else nothing.
std::optional<Kind> set_kind(const std::vector<std::string>& parts) {
  for (const auto& part : parts) {
    if (part.size() < 2 || part.front() != '{' || part.back() != '}')
      continue;
    std::vector<std::string> values;
    std::stringstream items(part.substr(1, part.size() - 2));
    std::string item;
    while (std::getline(items, item, ',')) {
      // A map (CLI::Transformer, "{a->b}") or a value the script cannot offer as it is.
      if (!plain_word(item) || item.find("->") != std::string::npos)
        return std::nullopt;
      values.push_back(item);
    }
    if (!values.empty())
      return "words:" + joined(values, ",");
  }
  return std::nullopt;
}

// Whether a validator checks the value as a path (CLI::ExistingFile, ExistingDirectory,
// ExistingPath, NonexistentPath): the parts after the type.
bool checked_as_path(const std::vector<std::string>& parts) {
  return std::any_of(parts.begin() + (parts.empty() ? 0 : 1), parts.end(), [](const auto& part) {
    return part == "FILE" || part == "DIR" || part.starts_with("PATH");
  });
}

bool is_file_name(std::string_view name) {
  return name == "FILE" || name == "OUT" || name == "PATH" || name == "DIR" ||
         name.ends_with("_FILE") || name.ends_with("_FILES") || name.ends_with("_PATH") ||
         name.ends_with("_DIR");
}

// How an option's value completes. CLI11 calls a path TEXT as it calls any string, and most of
// vm's text options take a path (--socket, --qemu, --inspect ...): TEXT completes file names, as
// bash's own default would. A type name of the command's own choosing says what the value is:
// VM (VM names), FILE, PATH, DIR or OUT (file names); another, such as NAME, completes nothing,
// as numbers do.
Kind value_kind(const CLI::Option& option) {
  const auto parts = type_parts(option);
  if (auto words = set_kind(parts))
    return *words;
  const std::string type = parts.empty() ? "" : parts.front();
  if (type == "VM")
    return "vm";
  if (type == "TEXT" || is_file_name(type) || checked_as_path(parts))
    return "file";
  return "none";
}

// How a positional completes: operands are named for what they are.
Kind operand_kind(const CLI::Option& option) {
  const std::string& name = option.get_single_name();
  const auto parts = type_parts(option);
  if (auto words = set_kind(parts))
    return *words;
  const std::string type = parts.empty() ? "" : parts.front();
  if (name == "VM" || type == "VM")
    return "vm";
  if (is_file_name(name) || is_file_name(type) || checked_as_path(parts))
    return "file";
  return "none";
}

// Adds `option` to `command`: offered unless hidden; in `valued` when it takes a value, hidden or
// not, so that its value is never taken for an operand.
void add_option(Command& command, const CLI::Option& option, bool own) {
  for (const auto& name : names_of(option)) {
    if (std::find(command.seen.begin(), command.seen.end(), name) != command.seen.end())
      continue;  // a command's own option hides its parent's of that name
    command.seen.push_back(name);
    if (!hidden(option))
      command.options.push_back(name);
    if (takes_value(option)) {
      command.valued.push_back(name);
      if (own && !hidden(option))
        command.values.emplace_back(name, value_kind(option));
    }
  }
}

void collect(const CLI::App& app, const std::string& path, std::vector<Command>& commands) {
  Command command;
  command.path = path;
  for (const CLI::Option* option : own_options(app)) {
    if (option->nonpositional())
      add_option(command, *option, true);
    if (option->get_positional()) {  // a hidden one still takes its operand
      Kind kind = hidden(*option) ? "none" : operand_kind(*option);
      if (option->get_items_expected_max() > 1)
        kind += "...";
      command.operands.push_back(kind);
    }
  }
  // Options the command passes on to the one above it (CLI11's fallthrough), and so on up; not
  // the help and version flags above, which are about those commands.
  for (const CLI::App* at = &app; at->get_fallthrough() && at->get_parent() != nullptr;) {
    at = at->get_parent();
    for (const CLI::Option* option : own_options(*at)) {
      if (option == at->get_help_ptr() || option == at->get_help_all_ptr() ||
          option == at->get_version_ptr() || !option->nonpositional())
        continue;
      add_option(command, *option, false);
    }
  }
  const auto subcommands =
      app.get_subcommands([](const CLI::App* sub) { return visible_command(*sub); });
  for (const CLI::App* sub : subcommands) {
    command.subcommands.push_back(sub->get_name());
    for (const auto& alias : sub->get_aliases()) {
      command.subcommands.push_back(alias);
      command.aliases.push_back(alias + ":" + sub->get_name());
    }
  }
  commands.push_back(std::move(command));
  for (const CLI::App* sub : subcommands)
    collect(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), commands);
}

constexpr std::string_view kHeader =
    R"(# bash completion for vm                                          -*- shell-script -*-
#
# GENERATED by `vm completion bash` (cli/completion.cpp) from the vm command's own CLI11
# definition: the commands, options and operands below are read from the very objects that parse
# vm's command line, so this file cannot drift from the program it completes. Do not edit it:
# change the command (cli/main.cpp) and rebuild. The build writes it to completion/vm in the
# build directory and `cmake --install` puts it in share/bash-completion/completions/vm, where
# bash-completion loads it the first time vm is completed; without bash-completion, source it.
#
# What completes: subcommands; options (after "-"); the values of an option or operand checked
# against a fixed set; VM names where an operand is named VM (from `vm list -q --all`: the dead
# ones too, which info, logs, wait and rm take; asking the daemon
# the command line names with --socket, else $CROSVISOR_SOCKET's, else yours); file names for
# FILE and OUT operands and for options whose value CLI11 knows only as text (most of vm's take a
# path); nothing for numbers.

)";

constexpr std::string_view kFunctions = R"(
# _vm_complete KIND CUR: adds to COMPREPLY the completions of CUR as KIND says: vm (your VMs'
# names), file, words:A,B,... or none.
_vm_complete() {
    local kind=$1 cur=$2
    case $kind in
        vm)
            local vm=${COMP_WORDS[0]} names
            [[ $vm == */* && -x $vm ]] || vm=vm
            names=$("$vm" ${_vm_socket:+--socket "$_vm_socket"} list -q --all 2>/dev/null)
            mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -W "$names" -- "$cur")
            ;;
        file)
            compopt -o filenames 2>/dev/null
            mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur")
            ;;
        words:*)
            kind=${kind#words:}
            mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -W "${kind//,/ }" -- "$cur")
            ;;
    esac
}

_vm() {
    local cur=${COMP_WORDS[COMP_CWORD]} command='' word kind _vm_socket=''
    local subcommands aliases options valued positionals alias
    local -i i operands=0 ended=0
    COMPREPLY=()
    _vm_spec ''
    # The words before the cursor: which command they name, how many operands it has been given,
    # and the options' values, skipped ("--opt=value" arrives as three words: --opt = value).
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if ((ended)) || [[ $word != -?* ]]; then
            if ((!ended)) && [[ " $subcommands " == *" $word "* ]]; then
                for alias in $aliases; do
                    [[ $word == "${alias%%:*}" ]] && word=${alias#*:}
                done
                command=${command:+$command }$word
                operands=0
                _vm_spec "$command"
            else
                operands+=1
            fi
        elif [[ $word == -- ]]; then
            ended=1
        elif [[ " $valued " == *" $word "* ]]; then
            i+=1
            if [[ ${COMP_WORDS[i]} == = ]]; then
                if ((i == COMP_CWORD)); then
                    cur=''
                else
                    i+=1
                fi
            fi
            if ((i == COMP_CWORD)); then  # the cursor is on this option's value
                _vm_value_kind "$command" "$word"
                _vm_complete "$kind" "$cur"
                return
            fi
@SOCKET@        fi
    done
    if ((!ended)) && [[ $cur == -* ]]; then
        if [[ $cur == --*=* ]]; then  # --opt=value as one word ("=" not in COMP_WORDBREAKS)
            word=${cur%%=*}
            [[ " $valued " == *" $word "* ]] || return
            _vm_value_kind "$command" "$word"
            _vm_complete "$kind" "${cur#*=}"
            COMPREPLY=("${COMPREPLY[@]/#/$word=}")
            return
        fi
        mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
        return
    fi
    ((ended)) || mapfile -t COMPREPLY < <(compgen -W "$subcommands" -- "$cur")
    # The operand under the cursor: the one at its place, or the last when that one repeats.
    local -a kinds=($positionals)
    kind=${kinds[operands]:-}
    if [[ -z $kind ]] && ((${#kinds[@]})) && [[ ${kinds[-1]} == *... ]]; then
        kind=${kinds[-1]}
    fi
    [[ -z $kind ]] || _vm_complete "${kind%...}" "$cur"
}

complete -F _vm vm
)";

}  // namespace

std::string bash_completion(const CLI::App& app) {
  std::vector<Command> commands;
  collect(app, "", commands);
  std::ostringstream out;
  out << kHeader;
  out << "# _vm_spec COMMAND: what COMMAND (its words after vm: '', 'run', 'fleet up', ...) "
         "accepts.\n"
         "#   subcommands  its subcommands, by name and by alias\n"
         "#   aliases      its subcommands' aliases, as ALIAS:NAME\n"
         "#   options      its options, those it passes on to the commands above it included\n"
         "#   valued       those of its options that take a value\n"
         "#   positionals  how each operand completes, in order (vm, file, words:A,B,... or "
         "none);\n"
         "#                \"...\" marks one that repeats\n"
         "_vm_spec() {\n"
         "    case $1 in\n";
  for (const auto& command : commands) {
    out << "        " << shell_word(command.path) << ")\n"
        << "            subcommands=" << shell_word(joined(command.subcommands)) << "\n"
        << "            aliases=" << shell_word(joined(command.aliases)) << "\n"
        << "            options=" << shell_word(joined(command.options)) << "\n"
        << "            valued=" << shell_word(joined(command.valued)) << "\n"
        << "            positionals=" << shell_word(joined(command.operands)) << "\n"
        << "            ;;\n";
  }
  out << "    esac\n"
         "}\n"
         "\n"
         "# _vm_value_kind COMMAND OPTION: sets kind to how OPTION's value completes, looking "
         "from\n"
         "# COMMAND upwards (an option a command passes on is the command's above it).\n"
         "_vm_value_kind() {\n"
         "    local command=$1\n"
         "    kind=none\n"
         "    while :; do\n"
         "        case \"$command|$2\" in\n";
  for (const auto& command : commands) {
    for (const auto& [option, kind] : command.values)
      out << "            " << shell_word(command.path + "|" + option)
          << ") kind=" << shell_word(kind) << "; return ;;\n";
  }
  out << "        esac\n"
         "        [[ -n $command ]] || return\n"
         "        if [[ $command == *' '* ]]; then command=${command% *}; else command=''; fi\n"
         "    done\n"
         "}\n";
  // The VM names come from the daemon the command line names.
  std::string functions(kFunctions);
  const auto socket_at = functions.find("@SOCKET@");
  const bool has_socket = app.get_option_no_throw("--socket") != nullptr;
  functions.replace(socket_at, std::string_view("@SOCKET@").size(),
                    has_socket ? "            if [[ $word == --socket ]]; then\n"
                                 "                _vm_socket=${COMP_WORDS[i]/#\\~/$HOME}\n"
                                 "            fi\n"
                               : "");
  out << functions;
  return out.str();
}

}  // namespace crosvisor::cli
