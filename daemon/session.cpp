// A session: one actor per connection, dispatching its requests (vm_requests.cpp,
// fleet_requests.cpp) and forwarding the events of the VMs it holds or follows.
#include "daemon/session.hpp"

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "crosvisor/error_bridge.hpp"
#include "crosvisor/messages.hpp"
#include "daemon/session_state.hpp"

namespace crosvisor::daemon {

// A request and the fds that came with it, as one actor message.
struct RequestEnvelope {
  protocol::Request request;
  std::shared_ptr<std::vector<UniqueFd>> fds;
};

}  // namespace crosvisor::daemon

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crosvisor::daemon::RequestEnvelope)

namespace crosvisor::daemon {
namespace {

using json = nlohmann::json;
using request_atom = caf::atom_constant<caf::atom("request")>;
using closed_atom = caf::atom_constant<caf::atom("closed")>;
using deadline_atom = caf::atom_constant<caf::atom("deadline")>;

void handle(Session* self, std::uint64_t id, const protocol::PingRequest&) {
  json reply = protocol::ok_reply(id);
  reply["pong"] = true;
  self->state.reply(std::move(reply));
}

void handle(Session* self, std::uint64_t id, const protocol::VersionRequest&) {
  json reply = protocol::ok_reply(id);
  reply["protocol"] = protocol::kVersion;
  reply["crosvisor"] = CROSVISOR_VERSION;
  reply["uid"] = self->state.context.daemon_uid;
  // A client of the daemon's own user looks a VMM up on its own PATH when the daemon was given
  // none (docs/cli.md).
  const auto& binaries = self->state.context.vmm_binaries;
  reply["vmm_binaries"] = {{"qemu", binaries.qemu.string()}, {"crosvm", binaries.crosvm.string()}};
  self->state.reply(std::move(reply));
}

// To the handler of the request's type; the fds go to those that take them (the server has
// refused fds with any other request).
void dispatch(Session* self, const protocol::Request& request, std::vector<UniqueFd> fds) {
  std::visit(
      [&](const auto& body) {
        if constexpr (requires { handle(self, request.id, body, std::move(fds)); })
          handle(self, request.id, body, std::move(fds));
        else
          handle(self, request.id, body);
      },
      request.body);
}

}  // namespace

std::uint64_t at_deadline(Session* self, std::chrono::milliseconds after,
                          std::function<void()> expired) {
  const auto deadline = ++self->state.last_deadline;
  self->state.deadlines.emplace(deadline, std::move(expired));
  self->delayed_send(self, after, deadline_atom::value, deadline);
  return deadline;
}

void cancel_deadline(Session* self, std::uint64_t deadline) {
  self->state.deadlines.erase(deadline);
}

namespace {

caf::behavior session_behavior(Session* self, SessionContext context, PeerCredentials peer,
                               std::shared_ptr<ConnectionPort> connection) {
  auto& st = self->state;
  st.context = context;
  st.peer = peer;
  st.connection = std::move(connection);
  spdlog::debug("session: pid {} uid {} connected", peer.pid, peer.uid);
  self->set_down_handler([=](const caf::down_msg& down) { on_vm_gone(self, down); });
  return {
      [=](request_atom, const RequestEnvelope& envelope) {
        dispatch(self, envelope.request, std::move(*envelope.fds));
      },
      [=](deadline_atom, std::uint64_t deadline) {
        auto found = self->state.deadlines.find(deadline);
        if (found == self->state.deadlines.end())
          return;  // cancelled
        auto expired = std::move(found->second);
        self->state.deadlines.erase(found);
        expired();
      },
      [=](const VmEvent& event) { forward_state(self, event); },
      [=](const SupervisorEvent& event) { forward_event(self, event); },
      [=](const ConsoleText& text) {
        // One event per line on the wire, as clients have always read them.
        for_each_line(text.lines, [&](std::string_view line) {
          self->state.connection->send_console(protocol::console_event(text.vm, line), text.vm);
        });
      },
      [=](const ConsoleBytes& bytes) {
        self->state.connection->send_console(protocol::console_data_event(bytes), bytes.vm);
      },
      [=](const ConsoleWriterLost& lost) {
        if (auto found = self->state.consoles.find(lost.vm); found != self->state.consoles.end())
          found->second.writer = false;
        self->state.reply(protocol::console_writer_lost_event(lost));
      },
      [=](closed_atom) {
        // Fleets held by this session (--foreground) go down with it, gracefully.
        for (auto& fleet : self->state.foreground_fleets)
          caf::anon_send(fleet, stop_atom::value);
        spdlog::debug("session: pid {} uid {} gone; its {} VM handle(s) go with it",
                      self->state.peer.pid, self->state.peer.uid, self->state.handles.size());
        self->quit();
      },
  };
}

// The connection's side: it runs on the server thread and only posts messages.
class SessionActorSink : public SessionSink {
 public:
  explicit SessionActorSink(caf::actor session) : session_(std::move(session)) {}
  ~SessionActorSink() override = default;
  // High priority, both: a session's mailbox may be deep in its VMs' console lines, and what
  // the client asks (a Ctrl-C's stop above all) must not wait behind them. They stay in order
  // with each other.
  void request(protocol::Request request, std::vector<UniqueFd> fds) override {
    caf::anon_send<caf::message_priority::high>(
        session_, request_atom::value,
        RequestEnvelope{std::move(request),
                        std::make_shared<std::vector<UniqueFd>>(std::move(fds))});
  }
  void closed() override {
    caf::anon_send<caf::message_priority::high>(session_, closed_atom::value);
  }

 private:
  caf::actor session_;
};

}  // namespace

std::unique_ptr<SessionSink> start_session(const SessionContext& context,
                                           const PeerCredentials& peer,
                                           std::shared_ptr<ConnectionPort> connection) {
  auto session = context.system->spawn(session_behavior, context, peer, std::move(connection));
  return std::make_unique<SessionActorSink>(std::move(session));
}

}  // namespace crosvisor::daemon
