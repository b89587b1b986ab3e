// Messages the reactor thread posts to a vm actor about its child, and the actor's own timers.
#pragma once

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "crosvisor/error.hpp"
#include "lifecycle/vm_lifecycle.hpp"
#include "process/exit_status.hpp"

namespace crosvisor {

// From a new client proxy to its vm actor: (attach_atom, caf::actor proxy), monitor me.
using attach_atom = caf::atom_constant<caf::atom("attach")>;
// From the service to a new vm actor, after the creator has its handle: launch now.
using launch_atom = caf::atom_constant<caf::atom("launch")>;
using spawned_atom = caf::atom_constant<caf::atom("spawned")>;  // (spawned_atom, pid_t)
using started_atom = caf::atom_constant<caf::atom("started")>;  // (started_atom)
using lfailed_atom = caf::atom_constant<caf::atom("lfailed")>;  // (lfailed_atom, Error)
using console_atom = caf::atom_constant<caf::atom("console")>;  // (console_atom, line)
using vmmout_atom = caf::atom_constant<caf::atom("vmmout")>;    // (vmmout_atom, line)
// (vsready_atom, error text): the guest made its vsock callback (empty text), or the host cannot
// listen for it.
using vsready_atom = caf::atom_constant<caf::atom("vsready")>;
using notice_atom = caf::atom_constant<caf::atom("notice")>;     // (notice_atom, GuestNotice)
using exited_atom = caf::atom_constant<caf::atom("exited")>;     // (exited_atom, ExitStatus)
using step_due_atom = caf::atom_constant<caf::atom("stepdue")>;  // (step_due_atom, StopStep)
// (stop_sent_atom, bool refused, string error): the answer to a control request ("" when done).
using stop_sent_atom = caf::atom_constant<caf::atom("stopsent")>;

}  // namespace crosvisor

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::Error)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::process::ExitStatus)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::lifecycle::StopStep)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::lifecycle::GuestNotice)
