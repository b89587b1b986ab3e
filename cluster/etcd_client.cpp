#include "cluster/etcd_client.hpp"

#include <nlohmann/json.hpp>

#include "cluster/libcurl.hpp"
#include "core/base64.hpp"

namespace crosvisor::cluster {
namespace {

using json = nlohmann::json;

std::size_t collect(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// The gateway prints 64-bit numbers as strings.
std::int64_t number(const json& object, const char* key) {
  if (!object.contains(key))
    return 0;
  const auto& value = object.at(key);
  if (value.is_string())
    return std::stoll(value.get<std::string>());
  return value.is_number() ? value.get<std::int64_t>() : 0;
}

json operation_json(const Operation& op) {
  if (op.kind == Operation::Kind::remove)
    return {{"request_delete_range", {{"key", base64_encode(op.key)}}}};
  json put = {{"key", base64_encode(op.key)}, {"value", base64_encode(op.value)}};
  if (op.lease != 0)
    put["lease"] = std::to_string(op.lease);
  return {{"request_put", put}};
}

json compare_json(const Compare& compare) {
  json out = {{"key", base64_encode(compare.key)}, {"result", "EQUAL"}};
  switch (compare.target) {
    case Compare::Target::value:
      out["target"] = "VALUE";
      out["value"] = base64_encode(compare.value);
      break;
    case Compare::Target::create_revision:
      out["target"] = "CREATE";
      out["create_revision"] = std::to_string(compare.revision);
      break;
    case Compare::Target::mod_revision:
      out["target"] = "MOD";
      out["mod_revision"] = std::to_string(compare.revision);
      break;
  }
  return out;
}

}  // namespace

struct EtcdClient::Impl {
  EtcdOptions options;
  const LibCurl* lib = nullptr;
  CURL* curl = nullptr;
  std::size_t current = 0;  // the endpoint that answered last, tried first

  ~Impl() {
    if (curl != nullptr)
      lib->easy_cleanup(curl);
  }

  // One endpoint: the reply's JSON, or why not. `reached` says whether etcd answered at all.
  Expected<json> post(const std::string& endpoint, const char* path, const std::string& body,
                      bool& reached) {
    reached = false;
    std::string reply;
    const std::string url = endpoint + path;
    lib->easy_setopt(curl, CURLOPT_URL, url.c_str());
    lib->easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    lib->easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    lib->easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    lib->easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
    lib->easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
    lib->easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.timeout.count()));
    lib->easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: other threads run
    const CURLcode code = lib->easy_perform(curl);
    if (code != CURLE_OK)
      return make_error(ErrorKind::io, "etcd " + endpoint + ": " + lib->easy_strerror(code));
    reached = true;
    long status = 0;
    lib->easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    json parsed = json::parse(reply, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object())
      return make_error(ErrorKind::io, "etcd " + endpoint + path + ": not a JSON reply (HTTP " +
                                           std::to_string(status) + ")");
    if (status != 200 || parsed.contains("error")) {
      const std::string message = parsed.value("message", parsed.value("error", std::string()));
      // gRPC code 5: NotFound (a lease that is gone); anything else is not ours to interpret.
      const auto kind = parsed.value("code", 0) == 5 ? ErrorKind::not_found : ErrorKind::io;
      return make_error(kind, "etcd " + endpoint + path + ": " + message);
    }
    return parsed;
  }

  // Every endpoint in turn, from the one that answered last, until one answers.
  Expected<json> call(const char* path, const json& body) {
    const std::string text = body.dump();
    Error last{ErrorKind::io, "etcd: no endpoint"};
    for (std::size_t i = 0; i < options.endpoints.size(); ++i) {
      const std::size_t at = (current + i) % options.endpoints.size();
      bool reached = false;
      auto reply = post(options.endpoints[at], path, text, reached);
      if (reached) {
        current = at;
        return reply;
      }
      last = reply.error();
    }
    return std::unexpected(last);
  }
};

Expected<EtcdClient> EtcdClient::open(EtcdOptions options) {
  if (options.endpoints.empty())
    return make_error(ErrorKind::invalid_config, "no etcd endpoint given");
  for (const auto& endpoint : options.endpoints) {
    if (!endpoint.starts_with("http://") && !endpoint.starts_with("https://"))
      return make_error(ErrorKind::invalid_config,
                        "etcd endpoint '" + endpoint + "' must start with http:// or https://");
  }
  for (const auto& file : {options.tls.ca, options.tls.cert, options.tls.key}) {
    std::error_code ec;
    if (!file.empty() && !std::filesystem::is_regular_file(file, ec))
      return make_error(ErrorKind::invalid_config, "TLS file " + file.string() + " is missing");
  }
  if (options.tls.cert.empty() != options.tls.key.empty())
    return make_error(ErrorKind::invalid_config,
                      "a client certificate needs its key, and a key its certificate");
  auto lib = libcurl();
  if (!lib)
    return std::unexpected(lib.error());
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->lib = *lib;
  impl->curl = impl->lib->easy_init();
  if (impl->curl == nullptr)
    return make_error(ErrorKind::io, "libcurl: no handle");
  impl->lib->easy_setopt(impl->curl, CURLOPT_HTTPHEADER, nullptr);
  const auto& tls = impl->options.tls;
  if (!tls.ca.empty())
    impl->lib->easy_setopt(impl->curl, CURLOPT_CAINFO, tls.ca.c_str());
  if (!tls.cert.empty()) {
    impl->lib->easy_setopt(impl->curl, CURLOPT_SSLCERT, tls.cert.c_str());
    impl->lib->easy_setopt(impl->curl, CURLOPT_SSLKEY, tls.key.c_str());
  }
  return EtcdClient(std::move(impl));
}

EtcdClient::EtcdClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EtcdClient::EtcdClient(EtcdClient&&) noexcept = default;
EtcdClient& EtcdClient::operator=(EtcdClient&&) noexcept = default;
EtcdClient::~EtcdClient() = default;

const std::string& EtcdClient::endpoint() const {
  return impl_->options.endpoints[impl_->current];
}

Expected<std::int64_t> EtcdClient::grant(std::chrono::seconds ttl) {
  auto reply = impl_->call("/v3/lease/grant", {{"TTL", ttl.count()}});
  if (!reply)
    return std::unexpected(reply.error());
  const auto id = number(*reply, "ID");
  if (id == 0)
    return make_error(ErrorKind::io, "etcd: lease grant without an id");
  return id;
}

Expected<std::int64_t> EtcdClient::keep_alive(std::int64_t lease) {
  auto reply = impl_->call("/v3/lease/keepalive", {{"ID", std::to_string(lease)}});
  if (!reply)
    return std::unexpected(reply.error());
  // A lease that is gone is answered with no TTL (0).
  const auto ttl = number(reply->value("result", json::object()), "TTL");
  if (ttl <= 0)
    return make_error(ErrorKind::not_found, "lease " + std::to_string(lease) + " is gone");
  return ttl;
}

Expected<void> EtcdClient::revoke(std::int64_t lease) {
  auto reply = impl_->call("/v3/lease/revoke", {{"ID", std::to_string(lease)}});
  if (!reply)
    return std::unexpected(reply.error());
  return {};
}

Expected<std::int64_t> EtcdClient::time_to_live(std::int64_t lease) {
  auto reply = impl_->call("/v3/lease/timetolive", {{"ID", std::to_string(lease)}});
  if (!reply)
    return std::unexpected(reply.error());
  const auto ttl = number(*reply, "TTL");
  if (ttl < 0)
    return make_error(ErrorKind::not_found, "lease " + std::to_string(lease) + " is gone");
  return ttl;
}

Expected<void> EtcdClient::put(const std::string& key, const std::string& value,
                               std::int64_t lease) {
  json body = {{"key", base64_encode(key)}, {"value", base64_encode(value)}};
  if (lease != 0)
    body["lease"] = std::to_string(lease);
  auto reply = impl_->call("/v3/kv/put", body);
  if (!reply)
    return std::unexpected(reply.error());
  return {};
}

namespace {

Expected<Range> range_of(const json& reply) {
  Range range;
  range.revision = number(reply.value("header", json::object()), "revision");
  for (const auto& item : reply.value("kvs", json::array())) {
    KeyValue kv;
    auto key = base64_decode(item.value("key", std::string()));
    auto value = base64_decode(item.value("value", std::string()));
    if (!key || !value)
      return make_error(ErrorKind::io, "etcd: a key or value that is not base64");
    kv.key = std::move(*key);
    kv.value = std::move(*value);
    kv.create_revision = number(item, "create_revision");
    kv.mod_revision = number(item, "mod_revision");
    kv.lease = number(item, "lease");
    range.kvs.push_back(std::move(kv));
  }
  return range;
}

}  // namespace

Expected<Range> EtcdClient::get(const std::string& key) {
  auto reply = impl_->call("/v3/kv/range", {{"key", base64_encode(key)}});
  if (!reply)
    return std::unexpected(reply.error());
  return range_of(*reply);
}

Expected<Range> EtcdClient::get_prefix(const std::string& prefix) {
  return get_range(prefix, prefix_end(prefix));
}

Expected<Range> EtcdClient::get_range(const std::string& key, const std::string& range_end) {
  auto reply = impl_->call("/v3/kv/range",
                           {{"key", base64_encode(key)}, {"range_end", base64_encode(range_end)}});
  if (!reply)
    return std::unexpected(reply.error());
  return range_of(*reply);
}

Expected<void> EtcdClient::remove(const std::string& key) {
  auto reply = impl_->call("/v3/kv/deleterange", {{"key", base64_encode(key)}});
  if (!reply)
    return std::unexpected(reply.error());
  return {};
}

Expected<bool> EtcdClient::commit(const Txn& txn) {
  json body = {{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const auto& compare : txn.compare)
    body["compare"].push_back(compare_json(compare));
  for (const auto& op : txn.success)
    body["success"].push_back(operation_json(op));
  for (const auto& op : txn.failure)
    body["failure"].push_back(operation_json(op));
  auto reply = impl_->call("/v3/kv/txn", body);
  if (!reply)
    return std::unexpected(reply.error());
  return reply->value("succeeded", false);
}

std::string prefix_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

}  // namespace crosvisor::cluster
