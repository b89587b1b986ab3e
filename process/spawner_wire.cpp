#include "process/spawner_wire.hpp"

#include <cstdint>
#include <cstring>
#include <filesystem>

namespace crosvisor::process::spawner_wire {
namespace {

class Writer {
 public:
  void number(std::uint64_t value) {
    out_.append(reinterpret_cast<const char*>(&value), sizeof(value));
  }
  void text(std::string_view value) {
    number(value.size());
    out_.append(value);
  }
  void texts(const std::vector<std::string>& values) {
    number(values.size());
    for (const auto& value : values)
      text(value);
  }
  void texts(const std::vector<std::filesystem::path>& values) {
    number(values.size());
    for (const auto& value : values)
      text(value.native());
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads what Writer wrote; any read past the end leaves it failed, and every later read gives
// zeros, so that a caller checks once at the end.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  std::uint64_t number() {
    std::uint64_t value = 0;
    if (in_.size() < sizeof(value)) {
      failed_ = true;
      return 0;
    }
    std::memcpy(&value, in_.data(), sizeof(value));
    in_.remove_prefix(sizeof(value));
    return value;
  }
  std::string text() {
    const std::uint64_t size = number();
    if (size > in_.size()) {
      failed_ = true;
      return {};
    }
    std::string value(in_.substr(0, size));
    in_.remove_prefix(size);
    return value;
  }
  template <class T>
  std::vector<T> texts() {
    const std::uint64_t count = number();
    std::vector<T> values;
    for (std::uint64_t i = 0; i < count && more(); ++i)
      values.emplace_back(text());
    return values;
  }
  bool more() const { return !failed_ && !in_.empty(); }
  bool complete() const { return !failed_ && in_.empty(); }

 private:
  std::string_view in_;
  bool failed_ = false;
};

}  // namespace

Request encode(const LaunchRequest& request, const std::filesystem::path& binary) {
  Writer out;
  Request encoded;
  out.text(binary.native());
  out.texts(request.args);
  out.texts(request.environment);
  out.number(request.fds.entries().size());
  for (const auto& entry : request.fds.entries()) {
    out.number(static_cast<std::uint64_t>(entry.target));
    encoded.fds.push_back(entry.source.get());
  }
  out.number(request.network_namespace >= 0 ? 1 : 0);
  if (request.network_namespace >= 0)
    encoded.fds.push_back(request.network_namespace);
  out.number(request.max_open_files);
  out.number(request.die_with_supervisor ? 1 : 0);
  out.texts(request.join_cgroups);
  out.number(request.sandbox ? 1 : 0);
  if (const auto& sandbox = request.sandbox) {
    out.number(sandbox->uid);
    out.number(sandbox->gid);
    out.number(sandbox->groups.size());
    for (gid_t group : sandbox->groups)
      out.number(group);
    out.number(sandbox->namespaces ? 1 : 0);
    out.text(sandbox->mount_point.native());
    out.texts(sandbox->read_only);
    out.texts(sandbox->writable);
    out.texts(sandbox->devices);
    out.text(sandbox->hostname);
    out.number(sandbox->own_network ? 1 : 0);
    out.number(sandbox->exec_through_fd ? 1 : 0);
  }
  encoded.bytes = out.take();
  return encoded;
}

Expected<Launch> decode(std::string_view bytes, std::vector<UniqueFd> fds) {
  Reader in(bytes);
  Launch launch;
  LaunchRequest& request = launch.request;
  request.binary = in.text();
  request.args = in.texts<std::string>();
  request.environment = in.texts<std::string>();
  const std::uint64_t planned = in.number();
  std::vector<int> targets;
  for (std::uint64_t i = 0; i < planned && i < fds.size(); ++i)
    targets.push_back(static_cast<int>(in.number()));
  const std::size_t with_namespace = in.number() != 0 ? 1 : 0;
  if (targets.size() != planned || planned + with_namespace != fds.size())
    return make_error(ErrorKind::protocol, "spawner: the fds do not match the launch request");
  for (std::size_t i = 0; i < targets.size(); ++i)
    request.fds.set(targets[i], std::move(fds[i]));
  if (with_namespace) {
    launch.network_namespace = std::move(fds.back());
    request.network_namespace = launch.network_namespace.get();
  }
  request.max_open_files = in.number();
  request.die_with_supervisor = in.number() != 0;
  request.join_cgroups = in.texts<std::string>();
  if (in.number() != 0) {
    Sandbox sandbox;
    sandbox.uid = static_cast<uid_t>(in.number());
    sandbox.gid = static_cast<gid_t>(in.number());
    const std::uint64_t groups = in.number();
    for (std::uint64_t i = 0; i < groups && in.more(); ++i)
      sandbox.groups.push_back(static_cast<gid_t>(in.number()));
    sandbox.namespaces = in.number() != 0;
    sandbox.mount_point = in.text();
    sandbox.read_only = in.texts<std::filesystem::path>();
    sandbox.writable = in.texts<std::filesystem::path>();
    sandbox.devices = in.texts<std::filesystem::path>();
    sandbox.hostname = in.text();
    sandbox.own_network = in.number() != 0;
    sandbox.exec_through_fd = in.number() != 0;
    request.sandbox = std::move(sandbox);
  }
  // Two entries for one number would leave one fd unplaced.
  if (!in.complete() || request.fds.entries().size() != planned)
    return make_error(ErrorKind::protocol, "spawner: a malformed launch request");
  return launch;
}

std::string encode(const Answer& answer) {
  Writer out;
  out.number(static_cast<std::uint64_t>(static_cast<std::int64_t>(answer.pid)));
  out.number(static_cast<std::uint64_t>(static_cast<std::int64_t>(answer.unreaped)));
  out.number(answer.error ? 1 : 0);
  if (answer.error) {
    out.text(kind_name(answer.error->kind));
    out.text(answer.error->message);
  }
  return out.take();
}

Expected<Answer> decode_answer(std::string_view bytes) {
  Reader in(bytes);
  Answer answer;
  answer.pid = static_cast<pid_t>(static_cast<std::int64_t>(in.number()));
  answer.unreaped = static_cast<pid_t>(static_cast<std::int64_t>(in.number()));
  if (in.number() != 0) {
    const auto kind = kind_named(in.text());
    std::string message = in.text();
    answer.error = Error{kind.value_or(ErrorKind::launch), std::move(message)};
  }
  if (!in.complete())
    return make_error(ErrorKind::protocol, "spawner: a malformed answer");
  return answer;
}

}  // namespace crosvisor::process::spawner_wire
