// A session's VM requests: create, list, info, stop, logs, subscribe.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "crosvisor/error_bridge.hpp"
#include "crosvisor/messages.hpp"
#include "daemon/ask_all.hpp"
#include "daemon/keeper.hpp"
#include "daemon/session_state.hpp"
#include "protocol/spec_json.hpp"
#include "vmm/reactor.hpp"

namespace crosvisor::daemon {

using json = nlohmann::json;

namespace {

constexpr auto kAskDeadline = std::chrono::seconds(10);

Error unanswered() {
  // No count: some of them may be other users' VMs.
  return Error{ErrorKind::unavailable,
               "a VM did not answer within 10 s (crosvisord is overloaded); try again"};
}

Error service_unanswered(caf::error& error) {
  return Error{ErrorKind::unavailable,
               "the VM service did not answer: " + from_caf_error(error).message};
}

// Asks each of `vms` for its info.
void ask_each(Session* self, const std::vector<VmActor>& vms,
              std::function<void(std::vector<FoundVm>, std::optional<Error>)> done) {
  auto found = std::make_shared<std::vector<FoundVm>>();
  found->reserve(vms.size());
  ask_all<VmInfo, info_atom>(
      self, vms, kAskDeadline,
      [found](const VmActor& vm, VmInfo& info) {
        found->push_back(FoundVm{vm, std::move(info)});
      },
      [found, done](bool in_time) {
        // A VM that is alive but did not answer in time cannot be left out: a list would hide
        // it, and a stop by name would say there is no such VM.
        if (!in_time)
          return done({}, unanswered());
        done(std::move(*found), std::nullopt);
      });
}

// The live VMs `target` may name, each with its info as it answers now: by name, those the
// service knows by that name; by CID, those whose kept info has that CID (a CID is granted before
// the VM starts, and told then).
void gather_targets(Session* self, const protocol::Target& target,
                    std::function<void(std::vector<FoundVm>, std::optional<Error>)> done) {
  const auto& service = self->state.context.service;
  if (!target.cid) {
    self->request(service, kAskDeadline, list_atom::value, target.text)
        .then([=](const std::vector<VmActor>& vms) { ask_each(self, vms, done); },
              [=](caf::error& error) { done({}, service_unanswered(error)); });
    return;
  }
  gather_listed(self, [=](ListedVms listed) {
    if (listed.error)
      return done({}, listed.error);
    std::vector<VmActor> candidates;
    for (const auto& vm : listed.vms) {
      if (target.matches(vm.last->info))
        candidates.push_back(vm.actor);
    }
    ask_each(self, candidates, done);
  });
}

}  // namespace

void gather_listed(Session* self, std::function<void(ListedVms)> done) {
  self->request(self->state.context.service, kAskDeadline, list_atom::value, info_atom::value)
      .then(
          [=](std::vector<ListedVm>& listed) {
            std::vector<VmActor> silent;
            for (const auto& vm : listed) {
              if (!vm.last)
                silent.push_back(vm.actor);
            }
            if (silent.empty())
              return done(ListedVms{std::move(listed), std::nullopt});
            // Only just created: asked, and listed as they answer.
            auto told = std::make_shared<std::vector<ListedVm>>();
            told->reserve(listed.size());
            for (auto& vm : listed) {
              if (vm.last)
                told->push_back(std::move(vm));
            }
            ask_all<VmInfo, info_atom>(
                self, std::move(silent), kAskDeadline,
                [told](const VmActor& vm, VmInfo& info) {
                  told->push_back(
                      {vm, std::make_shared<const VmSnapshot>(VmSnapshot{std::move(info), {}})});
                },
                [told, done](bool in_time) {
                  if (!in_time)
                    return done(ListedVms{{}, unanswered()});
                  done(ListedVms{std::move(*told), std::nullopt});
                });
          },
          [=](caf::error& error) {
            done(ListedVms{{}, service_unanswered(error)});
          });
}

void with_target(Session* self, std::uint64_t id, const protocol::Target& target,
                 std::function<void(const FoundVm&)> act, std::function<void()> missing) {
  gather_targets(self, target, [=](std::vector<FoundVm> vms, std::optional<Error> error) {
    auto& st = self->state;
    if (error)
      return st.fail(id, error->kind, error->message);
    std::vector<const FoundVm*> matches;
    for (const auto& vm : vms) {
      if (target.matches(vm.info) && st.may_act_on(vm.info.owner_uid))
        matches.push_back(&vm);
    }
    // Root sees every user's VMs, and several users may have one of that name: its own first.
    if (matches.size() > 1) {
      auto own = std::find_if(matches.begin(), matches.end(),
                              [&](const FoundVm* vm) { return vm->info.owner_uid == st.peer.uid; });
      if (own == matches.end()) {
        std::string cids;
        for (const auto* vm : matches)
          cids += (cids.empty() ? "" : ", ") + (vm->info.cid ? std::to_string(*vm->info.cid) : "-");
        return st.fail(
            id, ErrorKind::conflict,
            "several users have a VM named " + target.text + ": name it by its CID (" + cids + ")");
      }
      return act(**own);
    }
    if (matches.size() == 1)
      return act(*matches.front());
    if (missing)
      return missing();
    not_found(self, id, target);
  });
}

void not_found(Session* self, std::uint64_t id, const protocol::Target& target) {
  // Another user's VM is reported exactly like one that does not exist.
  self->state.fail(id, ErrorKind::not_found,
                   "no VM " + std::string(target.cid ? "with CID " : "named ") + target.text +
                       (self->state.peer.uid == 0 ? "" : " of yours"));
}

void forward_state(Session* self, const VmEvent& event) {
  auto& st = self->state;
  auto last = st.forwarded.find(event.vm);
  if (last != st.forwarded.end() && last->second == event.state)
    return;  // the current state a new subscription starts with
  st.forwarded[event.vm] = event.state;
  st.reply(protocol::state_event(event));
  if (event.state != VmState::dead)
    return;
  st.forwarded.erase(event.vm);
  auto [first, last_waiter] = st.stop_waiters.equal_range(event.vm);
  for (auto it = first; it != last_waiter; ++it) {
    json reply = protocol::ok_reply(it->second);
    reply["state"] = "dead";
    reply["reason"] = to_string(event.reason.value_or(DeathReason::unknown));
    reply["detail"] = event.detail;
    st.reply(std::move(reply));
  }
  st.stop_waiters.erase(first, last_waiter);
  // A dead VM's handle would keep its CID taken for as long as this session lasts.
  st.handles.erase(event.vm);
  st.consoles.erase(event.vm);
}

namespace {

// Whether this session holds `vm` (created it): its events already come through the handle, and
// subscribing as well would deliver every one of them twice.
bool holds(Session* self, const FoundVm& vm) {
  return self->state.handles.count(vm.info.name) != 0 && vm.info.owner_uid == self->state.peer.uid;
}

// Hears `vm`'s events from now on (unless the session already does, through its handle), and
// its end in case it is gone before the subscription arrives; with `lines`, its console lines.
void follow(Session* self, const FoundVm& vm, bool lines = true) {
  if (holds(self, vm))
    return;
  if (self->state.watched.emplace(vm.actor.address(), vm.info.name).second)
    self->monitor(vm.actor);
  if (lines) {
    self->send(vm.actor, subscribe_atom::value, caf::actor_cast<caf::actor>(self));
  } else {
    self->send(vm.actor, subscribe_atom::value, caf::actor_cast<caf::actor>(self),
               events_atom::value);
  }
}

}  // namespace

void on_vm_gone(Session* self, const caf::down_msg& down) {
  auto& st = self->state;
  auto it = st.watched.find(down.source);
  if (it == st.watched.end())
    return;
  const std::string name = it->second;
  st.watched.erase(it);
  const bool pending = st.stop_waiters.count(name) != 0 || st.forwarded.count(name) != 0;
  if (pending) {
    VmEvent gone;
    gone.vm = name;
    gone.state = VmState::dead;
    gone.detail = "the VM is gone";
    forward_state(self, gone);
  }
}

std::optional<Error> check_vmm_binary(const Session* self, const VmSpec& spec) {
  if (spec.vmm_binary.empty() || self->state.peer.uid == self->state.context.daemon_uid)
    return std::nullopt;
  return Error{ErrorKind::permission,
               "VM " + spec.name + " names a VMM binary (" + spec.vmm_binary.string() +
                   "), but this crosvisord runs as uid " +
                   std::to_string(self->state.context.daemon_uid) +
                   " and serves other users: it runs only the VMM binaries it was started with "
                   "(--qemu, --crosvm). Remove vmm_binary (and --qemu/--crosvm), or run your "
                   "own crosvisord"};
}

void handle(Session* self, std::uint64_t id, const protocol::CreateRequest& request,
            std::vector<UniqueFd> fds) {
  auto spec = protocol::spec_from_message(request.vm, std::move(fds));
  if (!spec)
    return self->state.fail(id, spec.error());
  if (auto refused = check_vmm_binary(self, *spec))
    return self->state.fail(id, *refused);
  spec->owner_uid = self->state.peer.uid;
  const std::string name = spec->name;
  // Detached, a keeper of its own is its client and holds it (daemon/keeper.hpp).
  const bool detach = request.detach;
  const caf::actor client =
      detach ? spawn_keeper(self->system(), name) : caf::actor_cast<caf::actor>(self);
  self->request(self->state.context.service, std::chrono::seconds(30), create_atom::value,
                std::move(*spec), client)
      .then(
          [=](VmHandle handle) {
            if (detach)
              caf::anon_send(client, keep_atom::value, std::move(handle));
            else
              self->state.handles[name] = std::move(handle);
            json reply = protocol::ok_reply(id);
            reply["vm"] = name;
            self->state.reply(std::move(reply));
          },
          [=](caf::error& error) {
            if (detach)
              caf::anon_send_exit(client, caf::exit_reason::user_shutdown);
            self->state.fail(id, from_caf_error(error));
          });
}

namespace {

// The list reply: the living (sorted by name) and then, with `dead`, the remembered dead, of
// this client or (all_users) of everyone.
void list_reply(Session* self, std::uint64_t id, std::vector<ListedVm> vms,
                const std::vector<VmInfo>& dead, bool all_users) {
  const auto by_name = [](const ListedVm& a, const ListedVm& b) {
    return std::tie(a.last->info.name, a.last->info.owner_uid) <
           std::tie(b.last->info.name, b.last->info.owner_uid);
  };
  // The service keeps them by owner, then name: one user's are in order already.
  if (!std::is_sorted(vms.begin(), vms.end(), by_name))
    std::sort(vms.begin(), vms.end(), by_name);
  const auto now = std::chrono::steady_clock::now();
  std::vector<protocol::ListedInfo> listed;
  listed.reserve(vms.size() + dead.size());
  for (const auto& vm : vms) {
    if (all_users || vm.last->info.owner_uid == self->state.peer.uid)
      listed.push_back({&vm.last->info, vm.last->uptime_ms(now)});
  }
  // The dead after the living, oldest death first.
  for (const auto& info : dead) {
    if (all_users || info.owner_uid == self->state.peer.uid)
      listed.push_back({&info, info.uptime_ms});
  }
  self->state.reply_text(protocol::vms_reply(id, listed));
}

}  // namespace

void handle(Session* self, std::uint64_t id, const protocol::ListRequest& request) {
  if (request.all_users && !self->state.may_see_all()) {
    return self->state.fail(id, ErrorKind::permission,
                            "listing every user's VMs needs root or the daemon's own user");
  }
  const bool all_users = request.all_users;
  const bool dead = request.dead;
  gather_listed(self, [=](ListedVms gathered) {
    if (gathered.error)
      return self->state.fail(id, gathered.error->kind, gathered.error->message);
    if (!dead)
      return list_reply(self, id, std::move(gathered.vms), {}, all_users);
    self->request(self->state.context.service, kAskDeadline, history_atom::value)
        .then(
            [=](const std::vector<VmInfo>& remembered) mutable {
              list_reply(self, id, std::move(gathered.vms), remembered, all_users);
            },
            [=](caf::error& error) { self->state.fail(id, from_caf_error(error)); });
  });
}

void handle(Session* self, std::uint64_t id, const protocol::InfoRequest& request) {
  const auto target = request.vm;
  const auto answer = [=](const VmInfo& info) {
    self->state.reply_text(protocol::info_reply(id, info));
  };
  with_target(
      self, id, target, [=](const FoundVm& vm) { answer(vm.info); },
      [=] {
        find_dead(self, target, [=](std::optional<VmInfo> dead) {
          if (!dead)
            return not_found(self, id, target);
          answer(*dead);
        });
      });
}

void handle(Session* self, std::uint64_t id, const protocol::StopRequest& request) {
  const bool force = request.force;
  const auto timeout = request.timeout_ms;
  with_target(self, id, request.vm, [=](const FoundVm& vm) {
    if (vm.info.state == VmState::dead) {
      json reply = protocol::ok_reply(id);
      reply["state"] = "dead";
      if (vm.info.reason)
        reply["reason"] = to_string(*vm.info.reason);
      reply["detail"] = vm.info.detail;
      return self->state.reply(std::move(reply));
    }
    // Answered when the VM is dead.
    self->state.stop_waiters.emplace(vm.info.name, id);
    follow(self, vm);
    if (force) {
      self->send<caf::message_priority::high>(vm.actor, stop_atom::value, kill_atom::value);
    } else if (timeout) {
      self->send<caf::message_priority::high>(vm.actor, stop_atom::value, *timeout);
    } else {
      self->send<caf::message_priority::high>(vm.actor, stop_atom::value);
    }
  });
}

void handle(Session* self, std::uint64_t id, const protocol::LogsRequest& request) {
  const auto lines = request.lines;
  const bool follow_on = request.follow;
  const auto target = request.vm;
  with_target(
      self, id, request.vm,
      [=](const FoundVm& vm) {
        self->request<caf::message_priority::high>(vm.actor, std::chrono::seconds(10),
                                                   logs_atom::value, lines)
            .then(
                [=](const std::vector<std::string>& tail) {
                  json reply = protocol::ok_reply(id);
                  reply["lines"] = tail;
                  self->state.reply(std::move(reply));
                  if (follow_on) {
                    self->state.forwarded[vm.info.name] = vm.info.state;
                    follow(self, vm);
                  }
                },
                [=](caf::error& error) { self->state.fail(id, from_caf_error(error)); });
      },
      [=] {
        // A dead VM's console is in its log file, which is its owner's to read: say where.
        find_dead(self, target, [=](std::optional<VmInfo> dead) {
          if (!dead)
            return not_found(self, id, target);
          if (dead->console_log.empty()) {
            return self->state.fail(
                id, ErrorKind::state,
                "VM " + dead->name + " is dead and kept no console (debug = none)");
          }
          json reply = protocol::ok_reply(id);
          reply["dead"] = true;
          reply["console_log"] = dead->console_log;
          self->state.reply(std::move(reply));
        });
      });
}

void handle(Session* self, std::uint64_t id, const protocol::SubscribeRequest& request) {
  with_target(self, id, request.vm, [=](const FoundVm& vm) {
    follow(self, vm);
    self->state.reply(protocol::ok_reply(id));
  });
}

void handle(Session* self, std::uint64_t id, const protocol::ConsoleRequest& request) {
  const bool write = request.write;
  const bool force = request.force;
  with_target(self, id, request.vm, [=](const FoundVm& vm) {
    const std::string name = vm.info.name;
    self->request<caf::message_priority::high>(vm.actor, std::chrono::seconds(10),
                                               console_attach_atom::value,
                                               caf::actor_cast<caf::actor>(self), write, force)
        .then(
            [=](bool writer) {
              self->state.consoles[name] = SessionState::ConsoleAttachment{vm.actor, writer};
              // Its states, to end the console when it dies; its bytes come as console_data.
              follow(self, vm, false);
              json reply = protocol::ok_reply(id);
              reply["vm"] = name;
              reply["writer"] = writer;
              self->state.reply(std::move(reply));
            },
            [=](caf::error& error) { self->state.fail(id, from_caf_error(error)); });
  });
}

void handle(Session* self, std::uint64_t id, const protocol::ConsoleInputRequest& request) {
  auto& st = self->state;
  auto found = st.consoles.find(request.vm);
  if (found == st.consoles.end()) {
    return st.fail(id, ErrorKind::state,
                   "this session is not attached to VM " + request.vm + "'s console");
  }
  if (!found->second.writer) {
    return st.fail(id, ErrorKind::state,
                   "this session only watches VM " + request.vm +
                       "'s console: another one writes to it (attach with force to take over)");
  }
  self->send<caf::message_priority::high>(found->second.vm, console_input_atom::value,
                                          caf::actor_cast<caf::actor>(self), request.bytes);
  st.reply(protocol::ok_reply(id));
}

void handle(Session* self, std::uint64_t id, const protocol::ConsoleDetachRequest& request) {
  auto& st = self->state;
  if (auto found = st.consoles.find(request.vm); found != st.consoles.end()) {
    self->send(found->second.vm, console_detach_atom::value, caf::actor_cast<caf::actor>(self));
    st.consoles.erase(found);
  }
  st.reply(protocol::ok_reply(id));
}

namespace {

// The one file a dump request brought, checked: a regular file open for writing.
Expected<DumpInto> dump_file(std::vector<UniqueFd> fds) {
  if (fds.size() != 1) {
    return make_error(ErrorKind::protocol, "a dump into a file takes exactly one fd (" +
                                               std::to_string(fds.size()) + " came)");
  }
  struct stat info {};
  const int mode = ::fcntl(fds[0].get(), F_GETFL);
  if (::fstat(fds[0].get(), &info) != 0 || !S_ISREG(info.st_mode) || mode < 0 ||
      (mode & O_ACCMODE) == O_RDONLY || (mode & O_PATH)) {
    return make_error(ErrorKind::protocol,
                      "the dump's fd must be a regular file opened for writing");
  }
  return DumpInto{std::shared_ptr<const int>(new int(fds[0].release()),
                                             [](const int* fd) {
                                               ::close(*fd);
                                               delete fd;
                                             }),
                  ""};
}

}  // namespace

void handle(Session* self, std::uint64_t id, const protocol::DumpRequest& request,
            std::vector<UniqueFd> fds) {
  std::optional<DumpInto> into;
  if (request.file) {
    auto file = dump_file(std::move(fds));
    if (!file)
      return self->state.fail(id, file.error());
    into = std::move(*file);
  } else if (!fds.empty()) {
    return self->state.fail(id, ErrorKind::protocol,
                            "fds came with a dump that goes to the dump directory");
  }
  with_target(self, id, request.vm, [=](const FoundVm& vm) {
    const auto answer = [=](const std::string& where) {
      json reply = protocol::ok_reply(id);
      reply["path"] = where;
      self->state.reply(std::move(reply));
    };
    const auto refuse = [=](caf::error& error) { self->state.fail(id, from_caf_error(error)); };
    // A dump writes the guest's RAM out: it may take a while.
    const auto patience = vmm::Reactor::kDumpTimeout + std::chrono::seconds(30);
    if (into) {
      self->request<caf::message_priority::high>(vm.actor, patience, dump_atom::value, *into)
          .then(answer, refuse);
    } else {
      self->request<caf::message_priority::high>(vm.actor, patience, dump_atom::value)
          .then(answer, refuse);
    }
  });
}

}  // namespace crosvisor::daemon

namespace crosvisor::daemon {

void handle(Session* self, std::uint64_t id, const protocol::StatsRequest& request) {
  if (request.all_users && !self->state.may_see_all()) {
    return self->state.fail(id, ErrorKind::permission,
                            "every user's VMs' figures need root or the daemon's own user");
  }
  const auto names = request.names;
  const bool all_users = request.all_users;
  gather_listed(self, [=](ListedVms gathered) {
    if (gathered.error)
      return self->state.fail(id, gathered.error->kind, gathered.error->message);
    std::vector<ListedVm> chosen;
    for (auto& vm : gathered.vms) {
      const VmInfo& info = vm.last->info;
      const bool visible = all_users || info.owner_uid == self->state.peer.uid;
      const bool named =
          names.empty() || std::find(names.begin(), names.end(), info.name) != names.end();
      if (visible && named && info.state != VmState::dead)
        chosen.push_back(std::move(vm));
    }
    for (const auto& name : names) {
      if (std::none_of(chosen.begin(), chosen.end(),
                       [&](const ListedVm& vm) { return vm.last->info.name == name; }))
        return self->state.fail(id, ErrorKind::not_found, "no live VM of yours named " + name);
    }
    auto stats = std::make_shared<std::vector<VmStats>>();
    const auto finish = [=] {
      std::sort(stats->begin(), stats->end(), [](const VmStats& a, const VmStats& b) {
        return std::tie(a.info.name, a.info.owner_uid) < std::tie(b.info.name, b.info.owner_uid);
      });
      json listed = json::array();
      for (const auto& one : *stats)
        listed.push_back(protocol::stats_json(one));
      json reply = protocol::ok_reply(id);
      reply["vms"] = std::move(listed);
      self->state.reply(std::move(reply));
    };
    std::vector<VmActor> actors;
    for (const auto& vm : chosen)
      actors.push_back(vm.actor);
    // As for info: one deadline for all; a VM that ended meanwhile is left out.
    ask_all<VmStats, stats_atom>(
        self, std::move(actors), kAskDeadline,
        [stats](const VmActor&, VmStats& one) { stats->push_back(std::move(one)); },
        [=](bool in_time) {
          if (!in_time)
            return self->state.fail(id, unanswered());
          finish();
        });
  });
}

}  // namespace crosvisor::daemon
