// crosvisord's part of a cluster (docs/cluster.md): its flags, and, when --cluster is given, its
// membership: the host agent (lease, records, fence) and the reader that answers `vm hosts`.
#pragma once

#include <CLI/CLI.hpp>
#include <caf/fwd.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "cluster/host_agent.hpp"
#include "crosvisor/vmm_binaries.hpp"
#include "daemon/cluster_host.hpp"
#include "daemon/cluster_reader.hpp"

namespace crosvisor::daemon {

struct ClusterFlags {
  std::string endpoints;  // comma-separated; empty: not part of a cluster
  std::string host_name;  // default: this machine's host name
  unsigned ttl_s = 10;
  unsigned margin_s = 3;
  cluster::EtcdTls tls;
};
void add_cluster_options(CLI::App& app, ClusterFlags& flags);

class ClusterMembership {
 public:
  // Joins (cluster::HostAgent::join: waits up to a TTL for a name left by a killed daemon).
  static Expected<std::unique_ptr<ClusterMembership>> join(const ClusterFlags& flags,
                                                           const VmmBinaries& binaries);
  ~ClusterMembership();  // leaves: the lease revoked, its live record gone at once

  // The reader `vm hosts` asks, with a client of its own; once. Its owner ends it (detached).
  ClusterReaderActor spawn_reader(caf::actor_system& system);
  // The actor that runs what the cluster places here (and coordinates, when elected); once.
  // Its owner ends it (detached).
  caf::actor spawn_host(caf::actor_system& system, const ServiceActor& service);
  const std::string& host_name() const { return name_; }

 private:
  ClusterMembership() = default;
  std::string name_;
  std::unique_ptr<cluster::HostAgent> agent_;
  std::shared_ptr<ClusterFence> fence_;
  std::optional<cluster::EtcdClient> reader_client_;
  std::optional<cluster::EtcdClient> host_client_;
};

}  // namespace crosvisor::daemon
