#include "store/records.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

namespace crosvisor::store {
namespace {

using json = nlohmann::json;

template <class T>
bool fits(const json& value) {
  if (value.is_number_unsigned())
    return std::in_range<T>(value.get<std::uint64_t>());
  if (value.is_number_integer())
    return std::in_range<T>(value.get<std::int64_t>());
  return false;
}

template <class T>
struct is_vector : std::false_type {};
template <class U>
struct is_vector<std::vector<U>> : std::true_type {};

// Whether the numbers in `value` fit T (an integer, or a list of integers); anything that is
// not a number is left to get<T>() to call the wrong type.
template <class T>
bool numbers_fit(const json& value) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    return !value.is_number() || fits<T>(value);
  } else if constexpr (is_vector<T>::value) {
    if (!value.is_array())
      return true;
    return std::all_of(value.begin(), value.end(),
                       [](const json& item) { return numbers_fit<typename T::value_type>(item); });
  } else {
    return true;
  }
}

// Reads fields of a record, remembering the first one missing or of the wrong type.
class Fields {
 public:
  explicit Fields(const json& object) : object_(object) {}

  template <class T>
  T get(const char* key) {
    if (!problem_.empty())
      return T{};
    // nlohmann converts a float, or an integer T cannot hold, with a cast: 1e33 into an int is
    // undefined behaviour (found by fuzz/state_records_fuzz.cpp), -1 into a uint32 a wrong
    // number. A record's numbers are whole and fit their fields, alone or in a list.
    const auto found = object_.is_object() ? object_.find(key) : object_.end();
    if (found != object_.end() && !numbers_fit<T>(*found)) {
      problem_ = std::string("'") + key + "' is not a whole number in range";
      return T{};
    }
    try {
      return object_.at(key).get<T>();
    } catch (const json::exception&) {
      problem_ = object_.contains(key) ? std::string("'") + key + "' has the wrong type"
                                       : std::string("'") + key + "' is missing";
      return T{};
    }
  }
  // A field later versions added: records written before it lack it, and are still read.
  template <class T>
  T get_or(const char* key, T absent) {
    if (!problem_.empty() || !object_.is_object() || !object_.contains(key))
      return absent;
    return get<T>(key);
  }
  json raw(const char* key) {
    if (problem_.empty() && !object_.contains(key))
      problem_ = std::string("'") + key + "' is missing";
    return problem_.empty() ? object_.at(key) : json();
  }
  template <class T>
  Expected<T> done(T value, const char* what) const {
    if (!object_.is_object())
      return make_error(ErrorKind::invalid_config, std::string(what) + " is not an object");
    if (!problem_.empty())
      return make_error(ErrorKind::invalid_config, std::string(what) + ": " + problem_);
    return value;
  }

 private:
  const json& object_;
  std::string problem_;
};

json nics_json(const std::vector<VmNic>& nics) {
  json list = json::array();
  for (const auto& nic : nics)
    list.push_back(
        {{"network", nic.network}, {"address", nic.address}, {"mac", nic.mac}, {"tap", nic.tap}});
  return list;
}

Expected<std::vector<VmNic>> nics_from(const json& list) {
  std::vector<VmNic> nics;
  if (!list.is_array())
    return make_error(ErrorKind::invalid_config, "'nics' has the wrong type");
  for (const auto& item : list) {
    Fields f(item);
    VmNic nic;
    if (item.is_object()) {
      nic.network = f.get<std::string>("network");
      nic.address = f.get<std::string>("address");
      nic.mac = f.get<std::string>("mac");
      nic.tap = f.get<std::string>("tap");
    }
    auto checked = f.done(std::move(nic), "an entry of 'nics'");
    if (!checked)
      return std::unexpected(checked.error());
    nics.push_back(std::move(*checked));
  }
  return nics;
}

}  // namespace

json to_json(const FleetRecord& r) {
  return {{"name", r.name},           {"owner_uid", r.owner_uid},
          {"owner_gid", r.owner_gid}, {"persistent", r.persistent},
          {"boot_id", r.boot_id},     {"created_at_ms", r.created_at_ms},
          {"fleet", r.fleet}};
}

json to_json(const VmRecord& r) {
  return {{"name", r.name},
          {"fleet", r.fleet},
          {"owner_uid", r.owner_uid},
          {"boot_id", r.boot_id},
          {"pid", r.pid},
          {"start_time", r.start_time},
          {"args", r.args},
          {"cid", r.cid},
          {"vmm", r.vmm},
          {"run_dir", r.run_dir.string()},
          {"started_at_ms", r.started_at_ms},
          {"ready", r.ready},
          {"restarts", r.restarts},
          {"recent_restarts_ms", r.recent_restarts_ms},
          {"nics", nics_json(r.nics)}};
}

json to_json(const NetworkRecord& r) {
  return {{"name", r.name},
          {"fleet", r.fleet},
          {"owner_uid", r.owner_uid},
          {"boot_id", r.boot_id},
          {"subnet", r.subnet},
          {"dns", r.dns},
          {"dir", r.dir.string()},
          {"dnsmasq_pid", r.dnsmasq_pid},
          {"dnsmasq_start_time", r.dnsmasq_start_time},
          {"dnsmasq_args", r.dnsmasq_args}};
}

Expected<FleetRecord> fleet_record_from(const json& j) {
  Fields f(j);
  FleetRecord r;
  if (j.is_object()) {
    r.name = f.get<std::string>("name");
    r.owner_uid = f.get<std::uint32_t>("owner_uid");
    r.owner_gid = f.get<std::uint32_t>("owner_gid");
    r.persistent = f.get<bool>("persistent");
    r.boot_id = f.get<std::string>("boot_id");
    r.created_at_ms = f.get<std::int64_t>("created_at_ms");
    r.fleet = f.raw("fleet");
  }
  return f.done(std::move(r), "fleet record");
}

Expected<VmRecord> vm_record_from(const json& j) {
  Fields f(j);
  VmRecord r;
  if (j.is_object()) {
    r.name = f.get<std::string>("name");
    r.fleet = f.get<std::string>("fleet");
    r.owner_uid = f.get<std::uint32_t>("owner_uid");
    r.boot_id = f.get<std::string>("boot_id");
    r.pid = f.get<pid_t>("pid");
    r.start_time = f.get<std::uint64_t>("start_time");
    r.args = f.get<std::vector<std::string>>("args");
    r.cid = f.get<std::uint32_t>("cid");
    r.vmm = f.get<std::string>("vmm");
    r.run_dir = f.get<std::string>("run_dir");
    r.started_at_ms = f.get<std::int64_t>("started_at_ms");
    r.ready = f.get<bool>("ready");
    r.restarts = f.get<std::uint32_t>("restarts");
    r.recent_restarts_ms = f.get<std::vector<std::int64_t>>("recent_restarts_ms");
    auto nics = nics_from(f.get_or<json>("nics", json::array()));
    if (!nics)
      return make_error(ErrorKind::invalid_config, "VM record: " + nics.error().message);
    r.nics = std::move(*nics);
  }
  return f.done(std::move(r), "VM record");
}

Expected<NetworkRecord> network_record_from(const json& j) {
  Fields f(j);
  NetworkRecord r;
  if (j.is_object()) {
    r.name = f.get<std::string>("name");
    r.fleet = f.get<std::string>("fleet");
    r.owner_uid = f.get<std::uint32_t>("owner_uid");
    r.boot_id = f.get<std::string>("boot_id");
    r.subnet = f.get<std::string>("subnet");
    r.dns = f.get<bool>("dns");
    r.dir = f.get<std::string>("dir");
    r.dnsmasq_pid = f.get<pid_t>("dnsmasq_pid");
    r.dnsmasq_start_time = f.get<std::uint64_t>("dnsmasq_start_time");
    r.dnsmasq_args = f.get<std::vector<std::string>>("dnsmasq_args");
  }
  return f.done(std::move(r), "network record");
}

}  // namespace crosvisor::store
