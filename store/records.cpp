#include "store/records.hpp"

namespace crosvisor::store {
namespace {

using json = nlohmann::json;

// Reads fields of a record, remembering the first one missing or of the wrong type.
class Fields {
 public:
  explicit Fields(const json& object) : object_(object) {}

  template <class T>
  T get(const char* key) {
    if (!problem_.empty())
      return T{};
    try {
      return object_.at(key).get<T>();
    } catch (const json::exception&) {
      problem_ = object_.contains(key) ? std::string("'") + key + "' has the wrong type"
                                       : std::string("'") + key + "' is missing";
      return T{};
    }
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
          {"recent_restarts_ms", r.recent_restarts_ms}};
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
  }
  return f.done(std::move(r), "VM record");
}

}  // namespace crosvisor::store
