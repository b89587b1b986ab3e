// The typed vocabulary of crosvisor's actors, for embedding applications and for the actors
// themselves: the atoms, and the interfaces of the service, of a VM's own actor and of a client's
// handle on a VM as caf::typed_actor, so that a message one of them does not take, or a reply of
// the wrong type, is a compile error.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "crosvisor/vm_event.hpp"
#include "crosvisor/vm_spec.hpp"

namespace crosvisor {

// The VM lives while any handle (VmHandle) on it does: when its client goes down, or every copy
// of the handle is dropped, the handle ends, and when a VM's last handle ends the VM is stopped.
// A client hears the VM's VmEvents (and, for debug = full VMs, its ConsoleTexts) through its
// handle, the last one being `dead` with the death reason.
using create_atom = caf::atom_constant<caf::atom("create")>;
using dup_atom = caf::atom_constant<caf::atom("dup")>;
using list_atom = caf::atom_constant<caf::atom("list")>;
using info_atom = caf::atom_constant<caf::atom("info")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using kill_atom = caf::atom_constant<caf::atom("kill")>;
using logs_atom = caf::atom_constant<caf::atom("logs")>;
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using events_atom = caf::atom_constant<caf::atom("events")>;
using taken_atom = caf::atom_constant<caf::atom("taken")>;
using in_use_atom = caf::atom_constant<caf::atom("inuse")>;
using console_attach_atom = caf::atom_constant<caf::atom("conattach")>;
using console_input_atom = caf::atom_constant<caf::atom("coninput")>;
using console_detach_atom = caf::atom_constant<caf::atom("condetach")>;
using dump_atom = caf::atom_constant<caf::atom("dump")>;
using history_atom = caf::atom_constant<caf::atom("history")>;
using forget_atom = caf::atom_constant<caf::atom("forget")>;
using watch_atom = caf::atom_constant<caf::atom("watch")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;

// A VM's own actor: what the service lists. It answers questions and takes stops, but holding
// it does not keep the VM alive.
using VmActor = caf::typed_actor<
    // -> the VM's state, resources and, once dead, how it died
    caf::replies_to<info_atom>::with<VmInfo>,
    // -> its info and what its VMM has used so far
    caf::replies_to<stats_atom>::with<VmStats>,
    // -> the last `count` console lines kept in memory (all kept when 0); an error (state) for a
    // debug = none VM, which keeps none
    caf::replies_to<logs_atom, std::uint32_t>::with<std::vector<std::string>>,
    // Graceful stop (ACPI power button), escalating after the VM's stop_timeout ...
    caf::reacts_to<stop_atom>,
    // ... or after this many milliseconds instead; or SIGKILL at once.
    caf::reacts_to<stop_atom, std::uint32_t>, caf::reacts_to<stop_atom, kill_atom>,
    // The subscriber hears the current state as a VmEvent, then every later VmEvent and, for
    // debug = full VMs, ConsoleText messages; with events_atom, the VmEvents only (for actors
    // that watch states: a chatty guest's lines are most of a VM's messages).
    caf::reacts_to<subscribe_atom, caf::actor>,
    caf::reacts_to<subscribe_atom, caf::actor, events_atom>,
    // The interactive console of a debug = full VM: (client, write, force) -> whether the client
    // is its writer. Any number of clients read (ConsoleBytes); one writes. A second writer is
    // refused (conflict) unless it forces, and then the first hears ConsoleWriterLost. Refused
    // (state) for a debug = none VM, and for a dead one.
    caf::replies_to<console_attach_atom, caf::actor, bool, bool>::with<bool>,
    // (client, bytes): what the guest reads, when the client is the writer (else dropped).
    caf::reacts_to<console_input_atom, caf::actor, std::string>,
    caf::reacts_to<console_detach_atom, caf::actor>,
    // A debug = full QEMU VM's memory as an ELF core, the guest paused meanwhile and going on
    // after: -> the dump's path (in the dump directory, within its cap), or (DumpInto) into the
    // client's own file -> its name. Refused (state) for a debug = none VM, a crosvm one (crosvm
    // has no such command) and one not running.
    caf::replies_to<dump_atom>::with<std::string>,
    caf::replies_to<dump_atom, DumpInto>::with<std::string>>;

// A live VM as the service keeps it: its actor, and what it last told of itself (nothing yet for
// one only just created: ask it).
struct ListedVm {
  VmActor actor;
  std::shared_ptr<const VmSnapshot> last;
};

// A client's handle on a VM (a client proxy; AVF's IVirtualMachine binder): everything a VM's
// actor takes, and (events_atom): from now on pass the client the VmEvents only, no console lines.
using VmHandle = VmActor::extend<caf::reacts_to<events_atom>>;

// The front door (crosvisor/service.hpp spawns it).
using ServiceActor = caf::typed_actor<
    // (spec, client) -> the client's handle on the new VM. `client` receives the VM's events;
    // it may be invalid: then only the handle's lifetime counts. Refused (invalid_config,
    // conflict, limit, ...) with nothing started.
    caf::replies_to<create_atom, VmSpec, caf::actor>::with<VmHandle>,
    // (handle, other_client) -> a second handle on the same VM for another client (AVF: passing
    // the binder on); the VM lives while either does.
    caf::replies_to<dup_atom, VmHandle, caf::actor>::with<VmHandle>,
    // -> every VM not yet forgotten, as its own actor (ask each for info_atom)
    caf::replies_to<list_atom>::with<std::vector<VmActor>>,
    // (name) -> the live VMs of that name, whoever owns them: what a request naming one VM
    // asks, so that its cost does not grow with the VMs there are
    caf::replies_to<list_atom, std::string>::with<std::vector<VmActor>>,
    // (info) -> every live VM with what it last told of itself, by owner and name: a list of
    // thousands of VMs without asking each one
    caf::replies_to<list_atom, info_atom>::with<std::vector<ListedVm>>,
    // (owner_uid, names) -> those of `names` that live VMs of that owner hold
    caf::replies_to<taken_atom, std::uint32_t,
                    std::vector<std::string>>::with<std::vector<std::string>>,
    // -> how many vsock CIDs are granted
    caf::replies_to<in_use_atom>::with<std::uint64_t>,
    // -> the dead VMs it remembers, as `info` last said of each (the newest death of each name of
    // each owner; at most kRememberedDeadPerOwner per owner, the oldest forgotten first)
    caf::replies_to<history_atom>::with<std::vector<VmInfo>>,
    // (owner, name) -> forgets that dead VM (true), or remembered none (false)
    caf::replies_to<forget_atom, std::optional<std::uint32_t>, std::string>::with<bool>,
    // (watcher) -> the last kRememberedEvents SupervisorEvents, oldest first; from then on every
    // new one goes to the watcher, until it ends
    caf::replies_to<watch_atom, caf::actor>::with<std::vector<SupervisorEvent>>>;

inline constexpr std::size_t kRememberedDeadPerOwner = 100;
inline constexpr std::size_t kRememberedEvents = 1000;

}  // namespace crosvisor

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::VmSpec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::VmEvent)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::VmStats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::VmUsage)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::ConsoleText)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::ConsoleBytes)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::ConsoleWriterLost)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::DumpInto)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::VmInfo)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<crosvisor::VmInfo>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<crosvisor::VmActor>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::VmSnapshot)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<crosvisor::ListedVm>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<std::uint32_t>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::SupervisorEvent)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<crosvisor::SupervisorEvent>)
