// What `cmake --install` puts beside the programs: the manual pages render without a warning and
// document every key the configuration readers take, and the bash completion, generated from
// vm's own command line definition, completes as a user's bash does it. The files are the
// build's (cmake/CrosvisorManuals.cmake).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "integration/daemon_process.hpp"
#include "integration/guest.hpp"
#include "support/processes.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

#if !defined(CROSVISOR_MAN_DIR) || !defined(CROSVISOR_BASH_COMPLETION)
#error "tests/CMakeLists.txt passes CROSVISOR_MAN_DIR and CROSVISOR_BASH_COMPLETION"
#endif

using namespace crosvisor;
using namespace std::chrono_literals;

namespace {

const std::filesystem::path kManDir = CROSVISOR_MAN_DIR;
const std::filesystem::path kCompletion = CROSVISOR_BASH_COMPLETION;
const std::vector<std::string> kPages = {"vm.1", "crosvisord.8", "crosvisor-vm.toml.5",
                                         "crosvisor-fleet.toml.5"};

// `text` as one single-quoted word for sh and bash.
std::string shell_word(const std::string& text) {
  std::string out = "'";
  for (const char c : text)
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A page as man(1) shows it, 80 columns, unhyphenated (a word is never split), every run of
// blanks and line breaks made one space (a phrase may straddle lines).
std::string rendered(const std::string& page) {
  const auto result = test::run_command("LC_ALL=C.UTF-8 MANWIDTH=80 man --nh --nj -l " +
                                        shell_word((kManDir / page).string()));
  REQUIRE(result.exit_code == 0);
  std::istringstream words(result.output);
  std::string text;
  for (std::string word; words >> word;)
    text += (text.empty() ? "" : " ") + word;
  return text;
}

// What bash offers for the words of a command line, the cursor at the end of the last word
// ("" for a new word): the completion file sourced by a bash of its own, the words handed to
// the function `complete -p vm` names, as readline would. `environment` is VAR=VALUE ...
std::set<std::string> completions(const std::vector<std::string>& words,
                                  const std::string& environment = "",
                                  const std::filesystem::path& directory = "/") {
  std::string array;
  for (const auto& word : words)
    array += " " + shell_word(word);
  std::string line;
  for (const auto& word : words)
    line += (line.empty() ? "" : " ") + word;
  const std::string script = "source " + shell_word(kCompletion.string()) +
                             " || exit 90\n"
                             "spec=$(complete -p vm) || exit 91\n"
                             "[[ $spec =~ -F\\ ([^ ]+) ]] || exit 92\n"
                             "COMP_WORDS=(" +
                             array +
                             " )\n"
                             "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
                             "COMP_LINE=" +
                             shell_word(line) +
                             "\n"
                             "COMP_POINT=${#COMP_LINE}\n"
                             "COMPREPLY=()\n"
                             "\"${BASH_REMATCH[1]}\" vm \"${COMP_WORDS[COMP_CWORD]}\" "
                             "\"${COMP_WORDS[COMP_CWORD - 1]}\"\n"
                             "printf '%s\\n' \"${COMPREPLY[@]}\"\n";
  const auto result =
      test::run_command("cd " + shell_word(directory.string()) + " && env " + environment +
                        " bash --norc --noprofile -c " + shell_word(script));
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  std::set<std::string> offered;
  std::istringstream lines(result.output);
  for (std::string word; std::getline(lines, word);) {
    if (!word.empty())
      offered.insert(word);
  }
  return offered;
}

// The keys a configuration reader takes: the first argument of each TableReader call that reads
// one ("vm.integer(\"cpus\", ...)").
std::set<std::string> keys_read_by(const std::string& source_file) {
  const std::string source =
      read_file(std::filesystem::path(CROSVISOR_SOURCE_DIR) / "config" / source_file);
  const std::regex call(
      R"re(\.(string|path|integer|seconds|boolean|choice|table|tables|array)\("([a-z_]+)")re");
  std::set<std::string> keys;
  for (auto it = std::sregex_iterator(source.begin(), source.end(), call);
       it != std::sregex_iterator(); ++it)
    keys.insert((*it)[2]);
  return keys;
}

}  // namespace

TEST_CASE("each manual page renders with man and no groff warning") {
  for (const auto& page : kPages) {
    INFO(page);
    REQUIRE(std::filesystem::exists(kManDir / page));
    // man-db's --warnings hands groff its warnings (-wmac by default, every one with =w); the
    // page goes to /dev/null and only the complaints are left (run_command adds its own 2>&1,
    // hence the subshell).
    for (const std::string warnings : {"--warnings", "--warnings=w"}) {
      const auto result =
          test::run_command("(LC_ALL=C.UTF-8 MANWIDTH=80 man " + warnings + " -l " +
                            shell_word((kManDir / page).string()) + " 2>&1 >/dev/null)");
      CHECK(result.exit_code == 0);
      CHECK(result.output == "");
    }
  }
  // From --help, and from man/*.h2m: their descriptions go after the paragraph of --help that
  // starts "vm: " or "crosvisord: ", and vanish if it no longer does.
  const std::string vm_page = rendered("vm.1");
  CHECK_THAT(vm_page, Catch::Contains("fleet") && Catch::Contains("--socket"));
  CHECK_THAT(vm_page, Catch::Contains("command line client of crosvisord(8)") &&
                          Catch::Contains("CROSVISOR_SOCKET") && Catch::Contains("HANGUP"));
  const std::string daemon_page = rendered("crosvisord.8");
  CHECK_THAT(daemon_page, Catch::Contains("--exit-when-idle") && Catch::Contains("VM_FILES"));
  CHECK_THAT(daemon_page, Catch::Contains("It serves a control socket") &&
                              Catch::Contains("XDG_RUNTIME_DIR") && Catch::Contains("SIGTERM"));
}

TEST_CASE("the file format pages document every key the configuration readers take") {
  const std::string vm_page = rendered("crosvisor-vm.toml.5");
  const auto vm_keys = keys_read_by("vm_config.cpp");
  REQUIRE(vm_keys.count("memory_mib") == 1);  // the pattern still finds the calls
  for (const auto& key : vm_keys) {
    INFO("crosvisor-vm.toml(5) lacks the key " << key);
    CHECK_THAT(vm_page, Catch::Contains(key));
  }
  const std::string fleet_page = rendered("crosvisor-fleet.toml.5");
  const auto fleet_keys = keys_read_by("fleet_config.cpp");
  REQUIRE(fleet_keys.count("max_restarts") == 1);
  for (const auto& key : fleet_keys) {
    INFO("crosvisor-fleet.toml(5) lacks the key " << key);
    CHECK_THAT(fleet_page, Catch::Contains(key));
  }
}

TEST_CASE("the installed bash completion is what vm completion bash prints") {
  const auto printed = test::run_command(std::string(VM_BINARY) + " completion bash 2>/dev/null");
  REQUIRE(printed.exit_code == 0);
  CHECK(printed.output == read_file(kCompletion));
  CHECK_THAT(printed.output, Catch::Contains("complete -F _vm vm"));
  // Hidden commands stay hidden.
  CHECK_THAT(printed.output, !Catch::Contains("'completion')"));
}

TEST_CASE("bash completes vm commands, subcommands, options and their values") {
  // Commands come and go: what is offered must include these, and offer nothing that does not
  // fit the word.
  const auto st = completions({"vm", "st"});
  CHECK(st.count("stop") == 1);
  CHECK(st.count("run") == 0);
  const auto fleet = completions({"vm", "fleet", ""});
  for (const std::string command : {"check", "up", "status", "down", "restart"})
    CHECK(fleet.count(command) == 1);
  CHECK(completions({"vm", "fleet", "re"}).count("restart") == 1);
  CHECK(completions({"vm", "--socket", "/x", "fleet", "sta"}).count("status") == 1);
  // Options: a command's own, and the global ones it passes on.
  const auto stop_options = completions({"vm", "stop", "--"});
  CHECK(stop_options.count("--force") == 1);
  CHECK(stop_options.count("--socket") == 1);
  CHECK(stop_options.count("--debug") == 0);
  // A value checked against a set: the set, written apart or after "=".
  CHECK(completions({"vm", "run", "--debug", ""}) == std::set<std::string>{"full", "none"});
  CHECK(completions({"vm", "--log-level", "=", "w"}) == std::set<std::string>{"warn"});
  CHECK(completions({"vm", "--log-level", "="}).count("trace") == 1);
  // An option's value is not taken for a command or an operand.
  CHECK(completions({"vm", "--log-level", "info", "inf"}).count("info") == 1);
  CHECK(completions({"vm", "--log-level", "info", "fleet", "do"}).count("down") == 1);
}

TEST_CASE("bash completes file names for FILE and OUT operands and path options") {
  test::TempDir dir;
  dir.write("web.toml", "");
  dir.write("wheel.img", "");
  const std::set<std::string> files = {"web.toml", "wheel.img"};
  CHECK(completions({"vm", "run", "w"}, "", dir.path()) == files);
  CHECK(completions({"vm", "fleet", "up", "--foreground", "w"}, "", dir.path()) == files);
  CHECK(completions({"vm", "composite", "w"}, "", dir.path()) == files);
  CHECK(completions({"vm", "dump", "web", "w"}, "", dir.path()) == files);  // VM, then FILE
  CHECK(completions({"vm", "--socket", "w"}, "", dir.path()) == files);
  // A number is no file name.
  CHECK(completions({"vm", "stop", "--timeout", "w"}, "", dir.path()).empty());
}

// The completion runs `vm list -q` (your VMs' names, one a line) for VM operands.
TEST_CASE("bash completes VM operands with the names of your VMs") {
  test::DaemonProcess daemon;
  std::vector<std::unique_ptr<test::Subprocess>> clients;
  for (const std::string name : {"compl-a", "compl-b"}) {
    const auto file = daemon.dir.write(name + ".toml", test::fake_crosvm_toml(name, "", false));
    clients.push_back(std::make_unique<test::Subprocess>(
        std::vector<std::string>{VM_BINARY, "run", file.string()}, daemon.env()));
    REQUIRE(clients.back()->wait_for_line("vm " + name + ": ready", 20s));
  }
  const auto listed = daemon.vm("list -q");
  REQUIRE(listed.exit_code == 0);
  REQUIRE_THAT(listed.output, Catch::Contains("compl-a\n") && Catch::Contains("compl-b\n"));
  // The vm under completion is the one the words name (here, the build's), asking the daemon
  // $CROSVISOR_SOCKET names ...
  const std::string env = "CROSVISOR_SOCKET=" + shell_word(daemon.socket.string());
  const std::set<std::string> both = {"compl-a", "compl-b"};
  CHECK(completions({VM_BINARY, "stop", ""}, env) == both);
  CHECK(completions({VM_BINARY, "info", "compl-"}, env) == both);
  CHECK(completions({VM_BINARY, "logs", "-n", "5", "compl-b"}, env) ==
        std::set<std::string>{"compl-b"});
  CHECK(completions({VM_BINARY, "fleet", "restart", "compl-a"}, env) ==
        std::set<std::string>{"compl-a"});
  CHECK(completions({VM_BINARY, "stop", "compl-a", ""}, env).empty());  // one VM operand
  // ... or the one --socket names, on the command line being completed.
  CHECK(completions({VM_BINARY, "--socket", daemon.socket.string(), "console", ""},
                    "CROSVISOR_SOCKET=/nonexistent") == both);
  // No daemon: nothing, and no error on the terminal.
  CHECK(completions({VM_BINARY, "stop", ""}, "CROSVISOR_SOCKET=/nonexistent").empty());
}
