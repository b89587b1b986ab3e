// The messages between a VM's own actor (actors/vm_actor), the client handles on it
// (actors/client_proxy) and the reactor thread that runs its VMM child, as the two actors'
// typed interfaces. The public halves are crosvisor/messages.hpp's VmActor and VmHandle.
#pragma once

#include <sys/types.h>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <string>

#include "crosvisor/error.hpp"
#include "crosvisor/messages.hpp"
#include "lifecycle/vm_lifecycle.hpp"
#include "process/exit_status.hpp"
#include "process/proc_identity.hpp"

namespace crosvisor {

using attach_atom = caf::atom_constant<caf::atom("attach")>;
using launch_atom = caf::atom_constant<caf::atom("launch")>;
using spawned_atom = caf::atom_constant<caf::atom("spawned")>;
using started_atom = caf::atom_constant<caf::atom("started")>;
using lfailed_atom = caf::atom_constant<caf::atom("lfailed")>;
using console_atom = caf::atom_constant<caf::atom("console")>;
using console_bytes_atom = caf::atom_constant<caf::atom("conbytes")>;
using vmmout_atom = caf::atom_constant<caf::atom("vmmout")>;
using vsready_atom = caf::atom_constant<caf::atom("vsready")>;
using notice_atom = caf::atom_constant<caf::atom("notice")>;
using exited_atom = caf::atom_constant<caf::atom("exited")>;
using step_due_atom = caf::atom_constant<caf::atom("stepdue")>;
using ready_due_atom = caf::atom_constant<caf::atom("readydue")>;
using stop_sent_atom = caf::atom_constant<caf::atom("stopsent")>;
using vm_dead_atom = caf::atom_constant<caf::atom("vmdead")>;
using vm_state_atom = caf::atom_constant<caf::atom("vmstate")>;
using vm_info_atom = caf::atom_constant<caf::atom("vminfo")>;
using dumped_atom = caf::atom_constant<caf::atom("dumped")>;
using identified_atom = caf::atom_constant<caf::atom("identified")>;
using lost_atom = caf::atom_constant<caf::atom("lost")>;
using let_go_atom = caf::atom_constant<caf::atom("letgo")>;
using usage_atom = caf::atom_constant<caf::atom("usage")>;
using kept_atom = caf::atom_constant<caf::atom("kept")>;
using tail_atom = caf::atom_constant<caf::atom("contail")>;
using quiet_atom = caf::atom_constant<caf::atom("quiet")>;

// Told by each VM's actor of its state changes, of its info whenever that changes (what lists
// show), and when its VM dies (the actor lives on while
// handles remain) with what `info` says of it from then on: the service, which frees the VM's
// name at once, remembers the dead VM (vm list --all) and tells those who watch every VM.
using VmDeathWatcher = caf::typed_actor<caf::reacts_to<vm_state_atom, caf::actor_addr, VmEvent>,
                                        caf::reacts_to<vm_info_atom, caf::actor_addr, VmSnapshot>,
                                        caf::reacts_to<vm_dead_atom, caf::actor_addr, VmInfo>>;

// A client handle as its VM sees it: it takes the VM's events for its client, and makes more
// handles on the same VM: (dup_atom, other_client) -> a new handle (the service's dup lands here).
using ClientProxyActor = VmHandle::extend<caf::reacts_to<VmEvent>, caf::reacts_to<ConsoleText>,
                                          caf::replies_to<dup_atom, caf::actor>::with<VmHandle>>;

// A VM's own actor, with what its handles, the service and the reactor tell it.
using VmActorImpl = VmActor::extend<
    // From a new handle: monitor me (the VM is stopped when its last handle is gone).
    caf::reacts_to<attach_atom, ClientProxyActor>,
    // From a handle whose client wants no console lines (events only, or no client at all).
    caf::reacts_to<quiet_atom, caf::actor_addr>,
    // From the service, once the creator has its handle: launch now.
    caf::reacts_to<launch_atom>,
    // From the reactor (vmm/reactor.hpp's ChildObserver): the VMM exists, its VM started, or it
    // could not be launched; a console line, a line of the VMM's own output; the guest's vsock
    // callback came (empty text) or cannot be waited for (why); how the guest is ending; the
    // reaped exit status.
    caf::reacts_to<spawned_atom, pid_t>, caf::reacts_to<started_atom>,
    caf::reacts_to<lfailed_atom, Error>, caf::reacts_to<console_atom, std::string>,
    caf::reacts_to<console_bytes_atom, std::string>, caf::reacts_to<vmmout_atom, std::string>,
    caf::reacts_to<vsready_atom, std::string>, caf::reacts_to<notice_atom, lifecycle::GuestNotice>,
    caf::reacts_to<exited_atom, process::ExitStatus>,
    // A durable VMM's identity (for its record); a VMM to take over is gone (why).
    caf::reacts_to<identified_atom, process::ProcessIdentity>, caf::reacts_to<lost_atom, Error>,
    // The supervisor exits and leaves its durable VMs running: the VM actor lets its VMM go
    // (true) and quits; a VM that is not durable answers false and stays.
    caf::replies_to<let_go_atom>::with<bool>,
    // Its own timers: a step of the stop sequence is due; the VM should be ready by now.
    caf::reacts_to<step_due_atom, lifecycle::StopStep>, caf::reacts_to<ready_due_atom>,
    // The answer to a control request: refused by the VMM (or not), and the error ("" if done).
    caf::reacts_to<stop_sent_atom, bool, std::string>,
    // A memory dump is written (token 0: a panicked guest's; others answer a dump_atom): where,
    // or why there is none.
    caf::reacts_to<dumped_atom, std::uint64_t, std::string, std::string>,
    // What its VMM used, read on the reactor thread for a stats_atom (token).
    caf::reacts_to<usage_atom, std::uint64_t, VmUsage>,
    // A console kept in a log (debug = full): its last lines as the VMM ended; and those asked
    // for by `vm logs` (token), from the reactor (found: false once the VMM is gone).
    caf::reacts_to<kept_atom, std::vector<std::string>>,
    caf::reacts_to<tail_atom, std::uint64_t, bool, std::vector<std::string>>>;

}  // namespace crosvisor

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::Error)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::process::ExitStatus)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::process::ProcessIdentity)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::lifecycle::StopStep)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::lifecycle::GuestNotice)
