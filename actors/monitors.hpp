// Taking a monitor back. CAF 0.17 keeps a monitor on the *monitored* actor until that one ends,
// and the monitor holds a weak reference to the observer, which keeps the observer's memory
// allocated. An actor that monitors longer-lived ones (its client, its subscribers) withdraws
// its monitors as it ends, or every one of them would stay behind on the long-lived actor: a
// few kilobytes per VM, forever (found with heaptrack: 20 000 failed VM starts held 30 MB).
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/actor_cast.hpp>
#include <caf/default_attachable.hpp>

namespace crosvisor {

inline void withdraw_monitor(const caf::actor_addr& observer, const caf::actor& observed) {
  if (!observed || !observer)
    return;
  caf::default_attachable::observe_token token{observer, caf::default_attachable::monitor};
  caf::actor_cast<caf::abstract_actor*>(observed)->detach(
      caf::attachable::token{caf::default_attachable::observe_token::token_type, &token});
}

}  // namespace crosvisor
