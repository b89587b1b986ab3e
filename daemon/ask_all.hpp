// One question put to many actors (every VM, for a list): a few at a time, with one deadline
// for all. Not for use outside daemon/.
//
// Why not one request per actor, all at once: CAF 0.17 keeps an actor's pending responses in a
// flat vector (scheduled_actor::multiplexed_responses_, a detail::unordered_flat_map), searched
// and erased from in place, so N requests in flight cost O(N^2): at 3 000 VMs a quarter of a
// list's time went to shifting that vector. With at most kAskWindow in flight each answer costs
// O(kAskWindow), and the VMs (on every scheduler thread) are kept just as busy.
#pragma once

#include <caf/event_based_actor.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <type_traits>
#include <vector>

#include "daemon/session_state.hpp"

namespace crosvisor::daemon {

inline constexpr std::size_t kAskWindow = 64;

namespace detail {

template <class Answer, class Atom, class Handle>
struct Asking {
  std::vector<Handle> targets;
  std::size_t next = 0;      // the next target to ask
  std::size_t answered = 0;  // answers and refusals (an actor that went away) so far
  bool over = false;         // all answered, or the deadline passed
  std::uint64_t deadline = 0;
  std::function<void(const Handle&, Answer&)> on_answer;
  std::function<void(bool in_time)> done;

  static void ask_next(Session* self, const std::shared_ptr<Asking>& asking) {
    const Handle target = asking->targets[asking->next++];
    const auto settle = [self, asking] {
      if (++asking->answered == asking->targets.size()) {
        asking->over = true;
        cancel_deadline(self, asking->deadline);
        return asking->done(true);
      }
      if (asking->next < asking->targets.size())
        ask_next(self, asking);
    };
    // High priority: an actor's mailbox may be deep in console lines, and a question about it
    // must not wait behind them. No timeout of its own (the deadline is for all of them).
    self->template request<caf::message_priority::high>(target, caf::infinite, Atom::value)
        .then(
            [=](Answer& answer) {
              if (asking->over)
                return;
              asking->on_answer(target, answer);
              settle();
            },
            [=](caf::error&) {
              if (!asking->over)
                settle();  // it went away meanwhile: nothing to say about it
            });
  }
};

}  // namespace detail

// Asks each of `targets` `Atom` (at most kAskWindow at once); each answer goes to `on_answer`
// (on the session's thread, in no particular order); then `done(true)`, or `done(false)` once
// `deadline` passed with some still unanswered (later answers are dropped).
template <class Answer, class Atom, class Handle>
void ask_all(Session* self, std::vector<Handle> targets, std::chrono::milliseconds deadline,
             std::type_identity_t<std::function<void(const Handle&, Answer&)>> on_answer,
             std::function<void(bool in_time)> done) {
  using Asking = detail::Asking<Answer, Atom, Handle>;
  if (targets.empty())
    return done(true);
  auto asking = std::make_shared<Asking>();
  asking->targets = std::move(targets);
  asking->on_answer = std::move(on_answer);
  asking->done = std::move(done);
  asking->deadline = at_deadline(self, deadline, [asking] {
    asking->over = true;
    asking->done(false);
  });
  while (asking->next < asking->targets.size() && asking->next < kAskWindow)
    Asking::ask_next(self, asking);
}

}  // namespace crosvisor::daemon
