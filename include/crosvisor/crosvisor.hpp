// crosvisor for applications that embed it in their own caf::actor_system: everything an
// application needs, in one include. See docs/embedding.md.
//
//   auto service = crosvisor::spawn_service(system, crosvisor::make_service_options(dir));
//   self->request(service, caf::infinite, crosvisor::create_atom::value, spec, self)
//       .then([=](crosvisor::VmHandle handle) { /* the VM lives while `handle` does */ });
#pragma once

#include "crosvisor/error.hpp"
#include "crosvisor/messages.hpp"
#include "crosvisor/paths.hpp"
#include "crosvisor/service.hpp"
#include "crosvisor/vm_event.hpp"
#include "crosvisor/vm_file.hpp"
#include "crosvisor/vm_spec.hpp"
#include "crosvisor/vm_state.hpp"
