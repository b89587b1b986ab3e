#include "daemon/cluster_membership.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <thread>

#include "process/launch.hpp"

namespace crosvisor::daemon {
namespace {

std::vector<std::string> split_endpoints(const std::string& text) {
  std::vector<std::string> endpoints;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto comma = std::min(text.find(',', start), text.size());
    if (comma > start)
      endpoints.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return endpoints;
}

std::string machine_name() {
  char name[256] = {};
  ::gethostname(name, sizeof(name) - 1);
  std::string text(name);
  text = text.substr(0, text.find('.'));
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

void add_cluster_options(CLI::App& app, ClusterFlags& flags) {
  app.add_option("--cluster", flags.endpoints,
                 "Join the cluster whose etcd members are at these endpoints (comma-separated "
                 "URLs, https:// with --cluster-cert; docs/cluster.md)");
  app.add_option("--host-name", flags.host_name,
                 "This host's name in the cluster (default: the machine's host name)");
  app.add_option("--cluster-ttl", flags.ttl_s,
                 "Seconds of the host's lease: a host not heard from for this long is lost "
                 "(default 10; below 10 an etcd leader change may fence every host)")
      ->check(CLI::Range(2u, 3600u));
  app.add_option("--cluster-margin", flags.margin_s,
                 "Seconds before its lease could expire that a cut-off host stops its cluster "
                 "VMs (default 3)")
      ->check(CLI::Range(1u, 3599u));
  app.add_option("--cluster-ca", flags.tls.ca, "The cluster's CA certificate (PEM)")
      ->check(CLI::ExistingFile);
  app.add_option("--cluster-cert", flags.tls.cert, "This host's client certificate (PEM)")
      ->check(CLI::ExistingFile);
  app.add_option("--cluster-key", flags.tls.key, "This host's client key (PEM)")
      ->check(CLI::ExistingFile);
}

Expected<std::unique_ptr<ClusterMembership>> ClusterMembership::join(const ClusterFlags& flags,
                                                                     const VmmBinaries& binaries) {
  cluster::EtcdOptions etcd{split_endpoints(flags.endpoints), flags.tls,
                            std::chrono::milliseconds(2000)};
  cluster::HostAgent::Options options;
  options.etcd = etcd;
  options.ttl = std::chrono::seconds(flags.ttl_s);
  options.margin = std::chrono::seconds(flags.margin_s);
  auto& record = options.record;
  record.name = flags.host_name.empty() ? machine_name() : flags.host_name;
  record.cpus = std::max(1u, std::thread::hardware_concurrency());
  record.memory_mib = static_cast<std::uint64_t>(::sysconf(_SC_PHYS_PAGES)) *
                      static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) / (1024 * 1024);
  // What it can run: the VMMs it finds (a path, or a name on PATH).
  if (process::resolve_binary(binaries.qemu.empty() ? "qemu-system-x86_64" : binaries.qemu))
    record.vmms.push_back("qemu");
  if (process::resolve_binary(binaries.crosvm.empty() ? "crosvm" : binaries.crosvm))
    record.vmms.push_back("crosvm");
  record.version = CROSVISOR_VERSION;
  // The fence stops this host's cluster VMs from the agent's timer thread itself; half the
  // margin for a graceful stop, then SIGKILL, all before the lease can expire.
  // Its second line, a process of its own: SIGKILLs the cluster's VMMs here two thirds into the
  // margin if this daemon, frozen, could not (still before the lease can expire).
  auto keeper = cluster::FenceKeeper::start();
  if (!keeper)
    return std::unexpected(keeper.error());
  auto shared_keeper = std::make_shared<cluster::FenceKeeper>(std::move(*keeper));
  const auto keeper_delay = std::chrono::milliseconds(flags.margin_s * 2000 / 3);
  options.deadline_moved = [shared_keeper, keeper_delay](auto deadline) {
    shared_keeper->set_deadline(deadline + keeper_delay);
  };
  auto fence = std::make_shared<ClusterFence>(std::chrono::milliseconds(flags.margin_s * 500),
                                              shared_keeper);
  options.fence = [name = record.name, fence] {
    spdlog::error("cluster: host {} fenced itself: its cluster VMs stop", name);
    fence->fence();
  };
  options.joined = [name = record.name, fence](std::int64_t lease) {
    spdlog::info("cluster: host {} is part of the cluster again (lease {:x})", name, lease);
    fence->rejoined();
  };
  auto reader_client = cluster::EtcdClient::open(etcd);
  if (!reader_client)
    return std::unexpected(reader_client.error());
  auto host_client = cluster::EtcdClient::open(etcd);
  if (!host_client)
    return std::unexpected(host_client.error());
  auto agent = cluster::HostAgent::join(std::move(options));
  if (!agent)
    return std::unexpected(agent.error());
  std::unique_ptr<ClusterMembership> membership(new ClusterMembership());
  membership->name_ = flags.host_name.empty() ? machine_name() : flags.host_name;
  membership->agent_ = std::move(*agent);
  membership->reader_client_.emplace(std::move(*reader_client));
  membership->host_client_.emplace(std::move(*host_client));
  membership->fence_ = std::move(fence);
  return membership;
}

caf::actor ClusterMembership::spawn_host(caf::actor_system& system, const ServiceActor& service) {
  auto client = std::move(*host_client_);
  host_client_.reset();
  ClusterHostConfig config;
  config.host = name_;
  config.lease = [agent = agent_.get()] { return agent->lease(); };
  config.service = service;
  config.fence = fence_;
  return spawn_cluster_host(system, std::move(config), std::move(client));
}

ClusterReaderActor ClusterMembership::spawn_reader(caf::actor_system& system) {
  auto client = std::move(*reader_client_);
  reader_client_.reset();
  return spawn_cluster_reader(system, std::move(client));
}

ClusterMembership::~ClusterMembership() = default;

}  // namespace crosvisor::daemon
