#include "integration/other_user.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/processes.hpp"

namespace crosvisor::test {
namespace {

void copy_executable(const std::filesystem::path& from, const std::filesystem::path& to) {
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
  ::chmod(to.c_str(), 0755);
}

}  // namespace

OtherUser::OtherUser() {
  ::chmod(dir.path().c_str(), 0711);
  std::filesystem::create_directory(bin);
  ::chmod(bin.c_str(), 0755);
  copy_executable(VM_BINARY, bin / "vm");
  copy_executable(CROSVISORD_BINARY, bin / "crosvisord");
  copy_executable(FAKE_CROSVM_BINARY, bin / "crosvm");
  std::filesystem::create_directory(runtime);
  [[maybe_unused]] int owned = ::chown(runtime.c_str(), kUid, kUid);
  ::chmod(runtime.c_str(), 0700);
  write("vmlinuz", "the stand-in reads no kernel, but it must be a non-empty file");
}

OtherUser::~OtherUser() {
  const auto ours = [&] { return processes_with_cmdline(dir.path().string()); };
  for (const pid_t pid : ours())
    ::kill(pid, SIGTERM);
  if (!eventually([&] { return ours().empty(); }, std::chrono::seconds(20))) {
    for (const pid_t pid : ours())
      ::kill(pid, SIGKILL);
  }
}

std::vector<std::string> OtherUser::as_nobody(const std::vector<std::string>& command,
                                              const std::vector<std::string>& extra,
                                              bool with_runtime_dir) const {
  std::vector<std::string> argv{"/usr/bin/setpriv",
                                "--reuid=" + std::to_string(kUid),
                                "--regid=" + std::to_string(kUid),
                                "--clear-groups",
                                "/usr/bin/env",
                                "-i",
                                "PATH=" + bin.string() + ":/usr/bin:/bin"};
  if (with_runtime_dir)
    argv.push_back("XDG_RUNTIME_DIR=" + runtime.string());
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

CommandResult OtherUser::vm(const std::string& args, const std::vector<std::string>& extra) const {
  std::string line;
  for (const auto& word : as_nobody({(bin / "vm").string()}, extra))
    line += word + " ";
  return run_command("cd " + dir.path().string() + " && " + line + args + " 2>&1");
}

std::filesystem::path OtherUser::write(const std::string& name, const std::string& text) const {
  auto path = dir.write(name, text);
  ::chmod(path.c_str(), 0644);
  return path;
}

std::string OtherUser::stand_in_toml(const std::string& name, const std::string& params,
                                     const std::string& extra) const {
  return "name = \"" + name + "\"\nvmm = \"crosvm\"\nkernel = \"" + (dir / "vmlinuz").string() +
         "\"\nparams = \"console=ttyS0 " + params +
         "\"\ndebug = \"full\"\nready = { console = \"fake-crosvm guest: ready\" }\n" + extra;
}

}  // namespace crosvisor::test
