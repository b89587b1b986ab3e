// A client of etcd's v3 API through its JSON gateway (etcd 3.4, Debian's etcd-server), over
// libcurl: leases, reads, writes and guarded transactions, each a blocking call bounded by a
// timeout. docs/cluster.md says why not gRPC. A call that fails or times out is *unknown*
// (ErrorKind::io), never an empty answer: an agent that read a failed read as "nothing there"
// stopped healthy VMs (shared/reference/etcd-facts.md). One client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "crosvisor/error.hpp"

namespace crosvisor::cluster {

// Mutual TLS: the cluster's CA, and this host's client certificate and key (PEM files).
struct EtcdTls {
  std::filesystem::path ca;
  std::filesystem::path cert;
  std::filesystem::path key;
};

struct EtcdOptions {
  std::vector<std::string> endpoints;  // "https://10.0.0.1:2379", tried in turn
  EtcdTls tls;
  std::chrono::milliseconds timeout{2000};  // per call and endpoint
};

struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t lease = 0;
};

struct Range {
  std::vector<KeyValue> kvs;
  std::int64_t revision = 0;  // the store's, when it was read
};

// One condition of a transaction: the key's value, or its creation or modification revision,
// equals the one given (a create revision of 0: the key does not exist).
struct Compare {
  enum class Target { value, create_revision, mod_revision };
  std::string key;
  Target target = Target::value;
  std::string value;
  std::int64_t revision = 0;
};

struct Operation {
  enum class Kind { put, remove };
  Kind kind = Kind::put;
  std::string key;
  std::string value;
  std::int64_t lease = 0;  // a put bound to a lease goes with it
};

struct Txn {
  std::vector<Compare> compare;
  std::vector<Operation> success;
  std::vector<Operation> failure;
};

class EtcdClient {
 public:
  // Refused (invalid_config) for an endpoint that is not http:// or https://, or TLS files that
  // are named but missing.
  static Expected<EtcdClient> open(EtcdOptions options);
  EtcdClient(EtcdClient&&) noexcept;
  EtcdClient& operator=(EtcdClient&&) noexcept;
  ~EtcdClient();

  // A lease of `ttl`: its id.
  Expected<std::int64_t> grant(std::chrono::seconds ttl);
  // Renewed: its TTL from now on; not_found when the lease is gone (expired or revoked).
  Expected<std::int64_t> keep_alive(std::int64_t lease);
  Expected<void> revoke(std::int64_t lease);
  // Seconds left; not_found when it is gone.
  Expected<std::int64_t> time_to_live(std::int64_t lease);

  Expected<void> put(const std::string& key, const std::string& value, std::int64_t lease = 0);
  Expected<Range> get(const std::string& key);
  Expected<Range> get_prefix(const std::string& prefix);
  // Keys from `key` up to (not including) `range_end`.
  Expected<Range> get_range(const std::string& key, const std::string& range_end);
  Expected<void> remove(const std::string& key);
  // Whether the comparisons held (the success operations were done), else the failure ones.
  Expected<bool> commit(const Txn& txn);

  const std::string& endpoint() const;  // the one that answered last

 private:
  struct Impl;
  explicit EtcdClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The end of the range of every key that starts with `prefix` (etcd's range_end).
std::string prefix_end(const std::string& prefix);

}  // namespace crosvisor::cluster
