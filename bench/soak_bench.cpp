// crosvisor-bench soak: fault trials against a real crosvisord, each followed by an account of
// everything a run can leak (bench/soak_account.hpp). Kinds of trial:
//   client-starting  kill -9 of the client holding a VM while the VM starts
//   client-ready     ... once it is ready
//   client-stopping  ... while it stops (a guest that ignores the power button)
//   vmm              kill -9 of a VMM
//   daemon           kill -9 of crosvisord with a persistent fleet (and, as root, its network)
//                    up or coming up; the next crosvisord takes the VMs over (live restore)
//   follower         SIGSTOP of a client following a chatty guest's console
//   mixed            a random interleaving of the above on several VMs at once
// A trial that leaves anything keeps its evidence (what was left, the daemon's log) in
// --evidence-dir, and the soak fails. VMMs are the crosvm stand-in (a TEST DOUBLE); as root they
// run confined, in cgroups, and fleets get a network of their own (namespace, bridge, TAPs,
// dnsmasq), as in production.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "bench/bench.hpp"
#include "bench/daemon_child.hpp"
#include "bench/soak_account.hpp"

namespace crosvisor::bench {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const std::vector<std::string> kKinds{
    "client-starting", "client-ready", "client-stopping", "vmm", "daemon", "follower", "mixed"};

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One crosvisord with live restore, in a directory of its own; restarted after a kill -9.
class Lab {
 public:
  explicit Lab(const Options& options) : options_(options) {
    paths_.dir = options.work_dir / "soak";
    paths_.socket = paths_.dir / "control.sock";
    paths_.runtime_dir = paths_.dir / "run";
    paths_.state_dir = paths_.dir / "state";
    daemon_log_ = paths_.dir / "crosvisord.log";
    fs::create_directories(paths_.dir);
    kernel_ = paths_.dir / "kernel";
    std::ofstream(kernel_) << "not a kernel: the stand-in only checks the file";
    root_ = geteuid() == 0;
  }
  ~Lab() { stop_daemon(); }

  const LabPaths& paths() const { return paths_; }
  pid_t daemon_pid() const { return daemon_ ? daemon_->child.pid : -1; }
  bool root() const { return root_; }
  const fs::path& daemon_log() const { return daemon_log_; }

  void start_daemon() {
    auto args = daemon_args(options_, paths_.dir);
    args.back() = "info";  // --log-level: the evidence of a failing trial
    args.insert(args.end(), {"--live-restore", "--log-file", daemon_log_.string()});
    daemon_ = std::make_unique<Child>(beside("crosvisord"), args, paths_.dir / "daemon.out");
    // Serving once `vm list` answers (a client never starts a daemon of its own here: the
    // socket is always named, and nothing runs `vm run` while there is none).
    wait_for([&] { return try_vm("list").has_value(); }, 30s, "crosvisord to serve");
  }
  void kill_daemon() { daemon_.reset(); }  // SIGKILL, reaped
  // After an interrupted trial: whatever runs is stopped through a daemon (a new one, taking
  // the VMs over, if the terminal's Ctrl-C reached this one too), then the daemon itself.
  void clean_up() {
    if (!daemon_ || ::waitpid(daemon_->child.pid, nullptr, WNOHANG) != 0) {
      if (daemon_)
        daemon_->alive = false;
      start_daemon();
    }
    (void)try_vm("fleet down --all --all-users --force");
    if (auto names = try_vm("list --quiet --all-users")) {
      std::istringstream lines(*names);
      for (std::string name; std::getline(lines, name);)
        (void)try_vm("stop --force " + name);
    }
    stop_daemon();
    // Persistent fleets would come up with the next daemon: the lab starts from no state.
    std::error_code ignored;
    fs::remove_all(paths_.state_dir, ignored);
  }
  void stop_daemon() {
    if (!daemon_)
      return;
    ::kill(daemon_->child.pid, SIGTERM);
    ::waitpid(daemon_->child.pid, nullptr, 0);
    daemon_->alive = false;
    daemon_.reset();
  }

  std::string vm(const std::string& args) const { return bench::vm(paths_.socket, args); }
  std::optional<std::string> try_vm(const std::string& args) const {
    try {
      return vm(args);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  // The VM's info, or nothing when the daemon knows no such VM (or does not answer).
  std::optional<nlohmann::json> info(const std::string& name) const {
    auto text = try_vm("info --json " + name);
    if (!text)
      return std::nullopt;
    auto json = nlohmann::json::parse(*text, nullptr, false);
    if (json.is_discarded())
      return std::nullopt;
    return json.contains("vm") ? json["vm"] : json;
  }
  std::string state_of(const std::string& name) const {
    auto vm = info(name);
    return vm && (*vm)["state"].is_string() ? (*vm)["state"].get<std::string>() : "";
  }
  std::size_t live_vms() const {
    auto text = try_vm("list --json --all-users");
    if (!text)
      return SIZE_MAX;
    auto json = nlohmann::json::parse(*text, nullptr, false);
    if (json.is_object() && json.contains("vms"))
      json = json["vms"];
    return json.is_array() ? json.size() : SIZE_MAX;
  }

  // A VM file for the stand-in; `params` adds its script markers (testing/fake_crosvm).
  fs::path vm_file(const std::string& name, const std::string& params,
                   const std::string& keys = "") const {
    const auto file = paths_.dir / (name + ".toml");
    std::ofstream(file)
        << "name = \"" << name << "\"\nvmm = \"crosvm\"\nkernel = \"" << kernel_.string()
        << "\"\nparams = \"console=ttyS0 " << lab_marker() << " " << params
        << "\"\nmemory_mib = 64\nready = { console = \"fake-crosvm guest: ready\" }\n"
        << "stop_timeout_s = 1\n"
        << keys;
    return file;
  }
  // A persistent fleet of three, on a network of its own when run as root.
  fs::path fleet_file(const std::string& name) const {
    const auto file = paths_.dir / (name + ".toml");
    std::ofstream out(file);
    out << "[fleet]\nname = \"" << name << "\"\n";
    if (root_)
      out << "[[network]]\nname = \"inner\"\ndns = true\n";
    out << "[defaults]\nvmm = \"crosvm\"\nkernel = \"" << kernel_.string()
        << "\"\nparams = \"console=ttyS0 " << lab_marker()
        << " fake_crosvm.boot_ms=200\"\nmemory_mib = 64\n"
        << "ready = { console = \"fake-crosvm guest: ready\" }\nrestart = \"on-failure\"\n"
        << "stop_timeout_s = 1\n"
        << (root_ ? "networks = [\"inner\"]\n" : "") << "[[vm]]\nname = \"" << name
        << "-{index}\"\ncount = 3\n";
    return file;
  }

  // A kernel parameter naming the lab (the guest ignores it): it puts the lab's directory on
  // each VMM's command line, where the account looks for the lab's processes.
  std::string lab_marker() const { return "soak.lab=" + paths_.dir.string(); }

  // A `vm` client of the lab's daemon, its output in the lab's directory.
  std::unique_ptr<Child> client(const std::string& tag, std::vector<std::string> args) const {
    args.insert(args.begin(), {"--socket", paths_.socket.string()});
    return std::make_unique<Child>(beside("vm"), args, paths_.dir / (tag + ".out"));
  }

  static void wait_for(const std::function<bool()>& done, std::chrono::milliseconds limit,
                       const std::string& what) {
    const auto until = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() > until)
        throw Failure("waited " + std::to_string(limit.count()) + " ms for " + what);
      std::this_thread::sleep_for(20ms);
    }
  }

 private:
  Options options_;
  LabPaths paths_;
  fs::path kernel_;
  fs::path daemon_log_;
  std::unique_ptr<Child> daemon_;
  bool root_ = false;
};

// A VM held by a `vm run` client: it lives as long as the client's session.
struct HeldVm {
  std::string name;
  std::unique_ptr<Child> client;
};

class Trials {
 public:
  Trials(Lab& lab, std::mt19937& random) : lab_(lab), random_(random) {}

  void run(const std::string& kind, int trial) {
    const std::string tag = "t" + std::to_string(trial);
    if (kind == "client-starting")
      client_starting(tag);
    else if (kind == "client-ready")
      client_ready(tag);
    else if (kind == "client-stopping")
      client_stopping(tag);
    else if (kind == "vmm")
      vmm(tag);
    else if (kind == "daemon")
      daemon(tag);
    else if (kind == "follower")
      follower(tag);
    else
      mixed(tag);
  }

 private:
  int between(int low, int high) { return std::uniform_int_distribution<int>(low, high)(random_); }

  HeldVm held_vm(const std::string& name, const std::string& params) {
    HeldVm vm{name, lab_.client(name, {"run", lab_.vm_file(name, params).string()})};
    Lab::wait_for([&] { return !lab_.state_of(name).empty(); }, 10s, name + " to exist");
    return vm;
  }
  void wait_state(const std::string& name, const std::string& state) {
    Lab::wait_for([&] { return lab_.state_of(name) == state; }, 15s, name + " to be " + state);
  }
  std::string detached(const std::string& name, const std::string& params) {
    lab_.vm("run --detach " + lab_.vm_file(name, params).string());
    return name;
  }
  pid_t vmm_pid(const std::string& name) {
    auto vm = lab_.info(name);
    if (!vm || !(*vm)["pid"].is_number_integer())
      throw Failure(name + " has no VMM");
    return (*vm)["pid"].get<pid_t>();
  }

  void client_starting(const std::string& tag) {
    auto vm = held_vm(tag + "-s", "fake_crosvm.boot_ms=400");
    std::this_thread::sleep_for(std::chrono::milliseconds(between(0, 300)));
    vm.client->kill();
  }
  void client_ready(const std::string& tag) {
    auto vm = held_vm(tag + "-r", "");
    wait_state(vm.name, "ready");
    vm.client->kill();
  }
  void client_stopping(const std::string& tag) {
    auto vm = held_vm(tag + "-p", "fake_crosvm.powerbtn=ignore");
    wait_state(vm.name, "ready");
    auto stopper = lab_.client(tag + "-stopper", {"stop", vm.name});
    wait_state(vm.name, "stopping");
    vm.client->kill();
    if (between(0, 1))
      stopper->kill();
  }
  void vmm(const std::string& tag) {
    const auto name = detached(tag + "-v", "");
    ::kill(vmm_pid(name), SIGKILL);
    wait_state(name, "dead");
    lab_.vm("rm " + name);
  }
  // Kill -9 of crosvisord with a persistent fleet ready (or, one time in three, coming up); the
  // next one takes its VMs over: the same VMMs, still ready.
  void daemon(const std::string& tag) {
    const auto fleet = tag + "-f";
    std::map<std::string, pid_t> before;
    std::unique_ptr<Child> coming_up;
    if (between(0, 2) == 0) {
      coming_up = lab_.client(fleet, {"fleet", "up", "--persist", lab_.fleet_file(fleet).string()});
      Lab::wait_for([&] { return !lab_.state_of(fleet + "-0").empty(); }, 10s, fleet + " to start");
      std::this_thread::sleep_for(std::chrono::milliseconds(between(0, 300)));
    } else {
      lab_.vm("fleet up --persist " + lab_.fleet_file(fleet).string());
      for (int i = 0; i < 3; ++i)
        before[fleet + "-" + std::to_string(i)] = vmm_pid(fleet + "-" + std::to_string(i));
    }
    lab_.kill_daemon();
    coming_up.reset();
    lab_.start_daemon();
    for (int i = 0; i < 3; ++i)
      wait_state(fleet + "-" + std::to_string(i), "ready");
    for (const auto& [name, pid] : before) {
      if (vmm_pid(name) != pid)
        throw Failure(name + " was not taken over: VMM " + std::to_string(pid) + " became " +
                      std::to_string(vmm_pid(name)));
    }
    lab_.vm("fleet down " + fleet);
    lab_.vm("fleet forget " + fleet);
  }
  // A client following a chatty console stops reading (SIGSTOP): the daemon keeps serving, the
  // guest keeps running, and the VM stops when asked.
  void follower(const std::string& tag) {
    const auto name = detached(tag + "-c", "fake_crosvm.chatter=400000");
    auto follower = lab_.client(tag + "-follower", {"logs", "-f", name});
    std::this_thread::sleep_for(std::chrono::milliseconds(between(100, 400)));
    ::kill(follower->child.pid, SIGSTOP);
    std::this_thread::sleep_for(std::chrono::milliseconds(between(300, 800)));
    lab_.vm("list");  // throws if the daemon does not answer
    if (lab_.state_of(name) != "ready")
      throw Failure(name + " stopped being ready while a follower was stopped");
    lab_.vm("stop " + name);
    if (between(0, 1)) {
      follower->kill();
    } else {
      ::kill(follower->child.pid, SIGCONT);  // it sees the VM's end and exits by itself
      Lab::wait_for([&] { return ::waitpid(follower->child.pid, nullptr, WNOHANG) != 0; }, 10s,
                    "the follower to end");
      follower->alive = false;
    }
    lab_.vm("rm " + name);
  }
  // Several VMs at once, and the faults above in a random order with random gaps: clients
  // killed, a VMM killed, a follower stopped, one time in three crosvisord killed in the middle.
  void mixed(const std::string& tag) {
    auto a = held_vm(tag + "-ma", "fake_crosvm.boot_ms=" + std::to_string(between(0, 300)));
    auto b = held_vm(tag + "-mb", "fake_crosvm.powerbtn=ignore");
    const auto chatty = detached(tag + "-mc", "fake_crosvm.chatter=200000");
    const auto victim = detached(tag + "-mv", "");
    auto follower = lab_.client(tag + "-mf", {"logs", "-f", chatty});
    std::vector<std::function<void()>> faults{
        [&] { a.client->kill(); },
        [&] { b.client->kill(); },
        [&] {
          // Gone already when crosvisord was killed first: a detached VM is not to outlive it.
          if (auto vm = lab_.info(victim); vm && (*vm)["pid"].is_number_integer())
            ::kill((*vm)["pid"].get<pid_t>(), SIGKILL);
        },
        [&] { ::kill(follower->child.pid, SIGSTOP); },
        [&] { (void)lab_.try_vm("stop --force " + chatty); },
    };
    const bool kill_daemon = between(0, 2) == 0;
    if (kill_daemon)
      faults.push_back([&] {
        lab_.kill_daemon();
        lab_.start_daemon();
      });
    std::shuffle(faults.begin(), faults.end(), random_);
    for (auto& fault : faults) {
      fault();
      std::this_thread::sleep_for(std::chrono::milliseconds(between(0, 200)));
    }
    // What legitimately lives on is stopped through the daemon; the rest must go by itself.
    follower->kill();
    for (const auto& name : {chatty, victim}) {
      (void)lab_.try_vm("stop --force " + name);
      (void)lab_.try_vm("rm " + name);
    }
  }

  Lab& lab_;
  std::mt19937& random_;
};

struct Tally {
  int trials = 0;
  int failed = 0;  // a promise broken (not taken over, not answering), apart from leaks
  std::map<std::string, int> leaks;  // resource kind -> trials that left one
};

// Waits for every VM to be gone and then for everything to be released; what is still there
// after `settle` is a leak.
Account settle(Lab& lab, const Baseline& baseline) {
  Account account;
  const auto until = Clock::now() + 20s;
  std::size_t live = SIZE_MAX;
  while ((live = lab.live_vms()) != 0 && Clock::now() < until)
    std::this_thread::sleep_for(50ms);
  const auto released_by = Clock::now() + 10s;
  for (;;) {
    account = take_account(lab.paths(), lab.daemon_pid(), baseline);
    if (live != 0)
      account.left["vms"].push_back(live == SIZE_MAX ? "the daemon did not answer"
                                                     : std::to_string(live) + " still live");
    if (account.clean() || Clock::now() > released_by)
      return account;
    std::this_thread::sleep_for(50ms);
    live = lab.live_vms();
  }
}

// Keeps what a failing trial left for whoever looks into it, then clears the lab for the next.
void keep_evidence(const fs::path& dir, int trial, const std::string& kind, const std::string& what,
                   const Lab& lab) {
  const auto kept = dir / ("trial-" + std::to_string(trial) + "-" + kind);
  fs::create_directories(kept);
  std::ofstream(kept / "left.txt") << what;
  std::error_code ec;
  fs::copy_file(lab.daemon_log(), kept / "crosvisord.log", fs::copy_options::overwrite_existing,
                ec);
  std::cerr << "soak: trial " << trial << " (" << kind << ") failed; evidence in " << kept.string()
            << "\n"
            << what;
}

}  // namespace

int soak_scenario(const Options& given) {
  Options options = given;
  const int trials = options.trials > 0 ? options.trials : options.quick ? 2 * 7 : 1000;
  const auto kinds = options.soak_kinds.empty() ? kKinds : options.soak_kinds;
  for (const auto& kind : kinds)
    if (std::find(kKinds.begin(), kKinds.end(), kind) == kKinds.end())
      throw std::runtime_error("unknown soak kind " + kind);
  const unsigned seed = options.seed ? options.seed : static_cast<unsigned>(std::random_device{}());
  const fs::path evidence =
      options.evidence_dir.empty()
          ? fs::temp_directory_path() / ("crosvisor-soak-" + std::to_string(seed))
          : options.evidence_dir;
  std::mt19937 random(seed);
  std::cout << "soak: " << trials << " trials of " << kinds.size() << " kinds, seed " << seed
            << " (--seed " << seed << " repeats them)\n";

  Lab lab(options);
  lab.start_daemon();
  auto baseline = take_baseline(lab.paths(), lab.daemon_pid());
  // The account can fail: a process and a run directory planted in the lab are both seen.
  {
    Child planted("/bin/sh", {"-c", "sleep 30", lab.paths().dir.string()},
                  lab.paths().dir / "planted.out");
    fs::create_directories(lab.paths().runtime_dir / "planted");
    const auto seen = take_account(lab.paths(), lab.daemon_pid(), baseline);
    fs::remove(lab.paths().runtime_dir / "planted");
    if (!seen.left.contains("processes") || !seen.left.contains("runtime_dirs"))
      throw std::runtime_error("the account missed a planted process or directory:\n" +
                               seen.to_string());
  }
  Trials runner(lab, random);
  std::map<std::string, Tally> tallies;
  const auto started = Clock::now();
  int bad_trials = 0;
  // Ctrl-C ends the soak after the trial under way, with its table and nothing left running.
  static volatile std::sig_atomic_t interrupted = 0;
  std::signal(SIGINT, [](int) { interrupted = 1; });
  std::signal(SIGTERM, [](int) { interrupted = 1; });
  int done = 0;
  for (int trial = 0; trial < trials && !interrupted; ++trial, ++done) {
    const auto& kind = kinds[static_cast<std::size_t>(trial) % kinds.size()];
    auto& tally = tallies[kind];
    ++tally.trials;
    std::string failure;
    try {
      runner.run(kind, trial);
    } catch (const std::exception& e) {
      failure = e.what();
      ++tally.failed;
    }
    const auto account = settle(lab, baseline);
    for (const auto& [resource, items] : account.left)
      ++tally.leaks[resource];
    if (!failure.empty() || !account.clean()) {
      ++bad_trials;
      keep_evidence(evidence, trial, kind,
                    (failure.empty() ? "" : "failed: " + failure + "\n") + account.to_string(),
                    lab);
      // A clean lab, a fresh daemon and baseline, so that one trial's leftovers are not
      // counted again by the next: what runs stopped through the daemon, then what is left of
      // the lab's processes killed.
      lab.clean_up();
      for (const auto& kind_left : {"processes", "dnsmasq"}) {
        if (const auto it = account.left.find(kind_left); it != account.left.end())
          for (const auto& item : it->second)
            ::kill(static_cast<pid_t>(std::stol(item)), SIGKILL);
      }
      lab.start_daemon();
      baseline = take_baseline(lab.paths(), lab.daemon_pid());
    }
    if ((trial + 1) % 50 == 0)
      std::cout << "soak: " << trial + 1 << " trials, " << bad_trials << " failed, "
                << std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started).count()
                << " s\n"
                << std::flush;
  }
  if (interrupted) {
    std::cout << "soak: interrupted after " << done << " trials; stopping what runs\n";
    lab.clean_up();
  } else {
    lab.stop_daemon();
  }

  // The table docs/reliability.md shows: per kind, trials, failures, and leaks of each resource.
  std::cout << "\nkind              trials  failed";
  for (const auto& resource : resource_kinds())
    std::cout << "  " << resource;
  std::cout << '\n';
  for (const auto& kind : kinds) {
    const auto& tally = tallies[kind];
    std::printf("%-16s  %6d  %6d", kind.c_str(), tally.trials, tally.failed);
    for (const auto& resource : resource_kinds()) {
      const auto it = tally.leaks.find(resource);
      std::printf("  %*d", static_cast<int>(resource.size()),
                  it == tally.leaks.end() ? 0 : it->second);
    }
    std::printf("\n");
  }
  std::cout << "soak: " << done << " trials in "
            << std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started).count()
            << " s, " << bad_trials << " failed or leaked"
            << (bad_trials ? " (evidence in " + evidence.string() + ")" : "") << '\n';
  return bad_trials == 0 && !interrupted ? 0 : 1;
}

}  // namespace crosvisor::bench
