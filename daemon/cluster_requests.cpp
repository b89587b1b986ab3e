// A session's requests to the cluster (docs/cluster.md): its hosts and events, and its fleets,
// kept in etcd, placed by the coordinator, run by the hosts they are placed on, asked about and
// brought down from any host.
#include <caf/event_based_actor.hpp>
#include <chrono>

#include "core/unix_time.hpp"
#include "crosvisor/error_bridge.hpp"
#include "daemon/session_state.hpp"
#include "protocol/fleet_json.hpp"

namespace crosvisor::daemon {
namespace {

using json = nlohmann::json;

}  // namespace

bool in_cluster(Session* self, std::uint64_t id) {
  if (self->state.context.cluster)
    return true;
  self->state.fail(id, Error{ErrorKind::state,
                             "this crosvisord is not part of a cluster (start it with --cluster "
                             "ENDPOINTS --host-name NAME)"});
  return false;
}

void handle_cluster(Session* self, std::uint64_t id, const protocol::FleetUpRequest& request,
                    std::vector<UniqueFd> fds) {
  if (!in_cluster(self, id))
    return;
  // Decoded and checked as for one host; the fds show the user can open every file here. The
  // hosts it is placed on reopen them by path, with the user's rights.
  auto fleet = protocol::fleet_from_message(request.fleet, std::move(fds));
  if (!fleet)
    return self->state.fail(id, fleet.error());
  if (!fleet->networks.empty())
    return self->state.fail(id, ErrorKind::invalid_config,
                            "fleet " + fleet->name +
                                ": a cluster fleet cannot have [[network]] (a network lives "
                                "in a namespace on one host): bring it up without --cluster");
  cluster::ClusterFleet record;
  record.name = fleet->name;
  record.owner_uid = self->state.peer.uid;
  record.owner_gid = self->state.peer.gid;
  record.submitted_on = self->state.context.host_name;
  record.submitted_at_ms = unix_now_ms();
  for (const auto& vm : fleet->vms) {
    if (auto refused = check_vmm_binary(self, vm.spec))
      return self->state.fail(id, *refused);
    record.wants.push_back({{fleet->name, vm.spec.name},
                            vm.group,
                            vm.placement.hosts,
                            vm.placement.spread,
                            vm.placement.on_host_loss == config::OnHostLoss::wait,
                            std::string(to_string(vm.spec.vmm)),
                            vm.after});
  }
  record.fleet = request.fleet;
  const std::string name = fleet->name;
  const std::size_t count = record.wants.size();
  self->request(self->state.context.cluster, std::chrono::seconds(30), cluster_up_atom::value,
                std::move(record))
      .then(
          [=](bool) {
            json reply = protocol::ok_reply(id);
            reply["fleet"] = name;
            reply["cluster"] = true;
            reply["vms"] = count;
            self->state.reply(std::move(reply));
          },
          [=](caf::error& error) { self->state.fail(id, from_caf_error(error)); });
}

void handle_cluster(Session* self, std::uint64_t id, const protocol::FleetStatusRequest& request) {
  if (!in_cluster(self, id))
    return;
  const std::string name = request.fleet;
  self->request(self->state.context.cluster, std::chrono::seconds(30), cluster_status_atom::value,
                name)
      .then(
          [=](const std::vector<ClusterVmView>& views) {
            json vms = json::array();
            std::size_t ready = 0;
            std::size_t up = 0;  // ready, or running (a VM without a ready condition)
            for (const auto& view : views) {
              json vm = {{"name", view.name},
                         {"host", view.host.empty() ? json(nullptr) : json(view.host)},
                         {"state", view.status ? json(view.status->state) : json(nullptr)},
                         {"pid", nullptr},
                         {"detail", view.status ? json(view.status->detail) : json(nullptr)}};
              if (view.status && view.status->pid)
                vm["pid"] = *view.status->pid;
              // Ready where it is placed: a status from another host is a move in progress.
              const bool here = view.status && view.status->host == view.host;
              if (here && view.status->state == "ready")
                ++ready;
              if (here && (view.status->state == "ready" || view.status->state == "running"))
                ++up;
              vms.push_back(std::move(vm));
            }
            json reply = protocol::ok_reply(id);
            reply["fleets"] = json::array({{{"name", name},
                                            {"cluster", true},
                                            {"total", views.size()},
                                            {"ready", ready},
                                            {"up", up},
                                            {"vms", vms}}});
            self->state.reply(std::move(reply));
          },
          [=](caf::error& error) { self->state.fail(id, from_caf_error(error)); });
}

void handle_cluster(Session* self, std::uint64_t id, const protocol::FleetDownRequest& request) {
  if (!in_cluster(self, id))
    return;
  if (request.all)
    return self->state.fail(id, ErrorKind::invalid_config,
                            "--all brings down this host's fleets, not the cluster's");
  const std::string name = request.fleet;
  self->request(self->state.context.cluster, std::chrono::seconds(30), cluster_down_atom::value,
                name, static_cast<std::uint32_t>(self->state.peer.uid))
      .then(
          [=](bool) {
            json reply = protocol::ok_reply(id);
            reply["fleet"] = name;
            reply["cluster"] = true;
            self->state.reply(std::move(reply));
          },
          [=](caf::error& error) { self->state.fail(id, from_caf_error(error)); });
}

void handle(Session* self, std::uint64_t id, const protocol::HostsRequest&) {
  if (!in_cluster(self, id))
    return;
  const auto& cluster = self->state.context.cluster;
  self->request(cluster, std::chrono::seconds(30), hosts_atom::value)
      .then(
          [=](const std::vector<cluster::HostStatus>& hosts) {
            json reply = protocol::ok_reply(id);
            reply["hosts"] = json::array();
            for (const auto& host : hosts) {
              json entry = cluster::to_json(host.record);
              entry["state"] = host.up ? "up" : "lost";
              if (host.up && host.ttl_s >= 0)
                entry["lease_ttl_s"] = host.ttl_s;
              reply["hosts"].push_back(std::move(entry));
            }
            self->state.reply(std::move(reply));
          },
          [=](caf::error& error) { self->state.fail(id, from_caf_error(error)); });
}

void handle(Session* self, std::uint64_t id, const protocol::ClusterEventsRequest& request) {
  if (!in_cluster(self, id))
    return;
  const auto& cluster = self->state.context.cluster;
  self->request(cluster, std::chrono::seconds(30), cluster_events_atom::value,
                static_cast<std::int64_t>(request.since_ms))
      .then(
          [=](const std::vector<cluster::ClusterEvent>& events) {
            json reply = protocol::ok_reply(id);
            reply["events"] = json::array();
            for (const auto& event : events)
              reply["events"].push_back(cluster::to_json(event));
            self->state.reply(std::move(reply));
          },
          [=](caf::error& error) { self->state.fail(id, from_caf_error(error)); });
}

}  // namespace crosvisor::daemon
