// Reading a JSON object a client sent, field by field: only the fields a message may have, each
// of the type it must be, every error naming its JSON path ("vm.disks[0].fd: must be an
// integer"). Internal to the protocol's decoders.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>

#include "crosvisor/error.hpp"

namespace crosvisor::protocol {

// A wrong field, at `where`: the client's request is malformed (a VM file's mistakes are found
// by config/, with file:line:key, before any request is sent).
inline Error bad(const std::string& where, const std::string& what) {
  return Error{ErrorKind::protocol, where + ": " + what};
}

class FieldReader {
 public:
  FieldReader(const nlohmann::json& object, std::string where)
      : object_(object), where_(std::move(where)) {}

  Expected<void> only(std::initializer_list<const char*> allowed) const {
    if (!object_.is_object())
      return std::unexpected(bad(where_, "must be an object"));
    for (const auto& [key, value] : object_.items()) {
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }))
        return std::unexpected(bad(path(key), "unknown field"));
    }
    return {};
  }
  bool has(const char* key) const { return object_.contains(key); }
  std::string path(const std::string& key) const {
    return where_.empty() ? key : where_ + "." + key;
  }
  const nlohmann::json& at(const char* key) const { return object_.at(key); }

  Expected<std::string> string(const char* key) const {
    if (!object_.contains(key))
      return std::unexpected(bad(path(key), "missing"));
    if (!object_[key].is_string())
      return std::unexpected(bad(path(key), "must be a string"));
    return object_[key].get<std::string>();
  }
  Expected<std::int64_t> integer(const char* key, std::int64_t low, std::int64_t high) const {
    const nlohmann::json& value = object_[key];
    if (!value.is_number_integer())
      return std::unexpected(bad(path(key), "must be an integer"));
    const auto number = value.get<std::int64_t>();
    if (number < low || number > high) {
      return std::unexpected(bad(
          path(key), "must be between " + std::to_string(low) + " and " + std::to_string(high)));
    }
    return number;
  }
  Expected<bool> boolean(const char* key) const {
    if (!object_[key].is_boolean())
      return std::unexpected(bad(path(key), "must be true or false"));
    return object_[key].get<bool>();
  }

 private:
  const nlohmann::json& object_;
  std::string where_;
};

}  // namespace crosvisor::protocol
