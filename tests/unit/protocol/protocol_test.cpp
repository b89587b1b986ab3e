// The control socket's protocol, without sockets: frames, requests, VM descriptions with fds.
#include <fcntl.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>

#include "core/base64.hpp"
#include "protocol/fleet_json.hpp"
#include "protocol/framing.hpp"
#include "protocol/replies.hpp"
#include "protocol/requests.hpp"
#include "protocol/spec_json.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace crosvisor::protocol;
using json = nlohmann::json;

namespace {
std::string refusal(const std::string& payload) {
  std::optional<std::uint64_t> id;
  auto request = parse_request(payload, id);
  REQUIRE_FALSE(request.has_value());
  return request.error().message;
}

std::string spec_refusal(const json& vm, std::vector<UniqueFd> fds) {
  auto spec = spec_from_message(vm, std::move(fds));
  REQUIRE_FALSE(spec.has_value());
  return spec.error().message;
}

UniqueFd open_file(const std::filesystem::path& path, int flags = O_RDONLY) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
  REQUIRE(fd.valid());
  return fd;
}
}  // namespace

TEST_CASE("frames: length-prefixed, reassembled from pieces, bounded") {
  FrameDecoder decoder;
  const std::string two = encode_frame("{\"a\":1}") + encode_frame("{}");
  decoder.feed(two.substr(0, 3));
  CHECK_FALSE(decoder.next()->has_value());
  decoder.feed(two.substr(3));
  CHECK(decoder.next()->value() == "{\"a\":1}");
  CHECK(decoder.next()->value() == "{}");
  CHECK_FALSE(decoder.next()->has_value());

  FrameDecoder empty;
  empty.feed(std::string(4, '\0'));
  CHECK(empty.next().error().message == "empty frame");
  FrameDecoder huge;
  huge.feed(std::string("\x7f\xff\xff\xff", 4));
  CHECK_THAT(huge.next().error().message, Catch::StartsWith("frame of 2147483647 bytes"));

  // A reply may be larger than a request (a list of thousands of VMs), within its own bound.
  const std::string big = "\"" + std::string(2 << 20, 'x') + "\"";
  FrameDecoder request_side;
  request_side.feed(encode_frame(big));
  CHECK_THAT(request_side.next().error().message, Catch::EndsWith("the limit is 1048576"));
  FrameDecoder reply_side(kMaxReplyFrame);
  reply_side.feed(encode_frame(big));
  CHECK(reply_side.next()->value().size() == big.size());
}

TEST_CASE("requests are checked field by field") {
  std::optional<std::uint64_t> id;
  auto stop = parse_request(R"({"id": 4, "op": "stop", "vm": "web-1", "timeout_ms": 500})", id);
  REQUIRE(stop.has_value());
  const auto& stop_body = std::get<StopRequest>(stop->body);
  CHECK(stop_body.vm.text == "web-1");
  CHECK_FALSE(stop_body.vm.cid.has_value());
  CHECK(stop_body.timeout_ms == std::optional<std::uint32_t>(500));
  CHECK_FALSE(stop_body.force);
  auto by_cid = parse_request(R"({"id": 5, "op": "info", "vm": "2049"})", id);
  CHECK(std::get<InfoRequest>(by_cid->body).vm.cid == std::optional<std::uint32_t>(2049));
  auto logs =
      parse_request(R"({"id": 6, "op": "logs", "vm": "a", "lines": 10, "follow": true})", id);
  CHECK(std::get<LogsRequest>(logs->body).lines == 10);
  CHECK(std::get<LogsRequest>(logs->body).follow);

  CHECK(refusal("not json") == "the request is not JSON");
  CHECK(refusal("[1]") == "the request must be a JSON object");
  CHECK(refusal(R"({"op": "ping"})") == "the request needs an 'id': a non-negative integer");
  CHECK(refusal(R"({"id": -1, "op": "ping"})") ==
        "the request needs an 'id': a non-negative integer");
  CHECK(refusal(R"({"id": 1})") == "the request needs an 'op' string");
  CHECK(refusal(R"({"id": 1, "op": "reboot"})") == "unknown op 'reboot'");
  CHECK(refusal(R"({"id": 1, "op": "ping", "x": 1})") == "'x' is not a field of 'ping'");
  CHECK(refusal(R"({"id": 1, "op": "stop"})") == "'stop' needs 'vm'");
  CHECK(refusal(R"({"id": 1, "op": "stop", "vm": 7})") == "'vm' must be a VM name or CID");
  CHECK(refusal(R"({"id": 1, "op": "info", "vm": "99999999999"})") == "'vm': CID out of range");
  CHECK(refusal(R"({"id": 1, "op": "list", "all_users": "yes"})") ==
        "'all_users' must be true or false");
  CHECK(refusal(R"({"id": 1, "op": "list", "all": true})") == "'all' is not a field of 'list'");
  CHECK(refusal(R"({"id": 1, "op": "logs", "vm": "a", "lines": -3})") ==
        "'lines' must be an integer from 0 to 100000");
  CHECK(refusal(R"({"id": 1, "op": "create", "vm": "x"})") ==
        "'vm' must be the VM description (an object)");
  // Nesting is bounded before anything is built from the text.
  const std::string deep = R"({"id": 1, "op": "create", "vm": {"a": )" + std::string(100'000, '[');
  CHECK(refusal(deep) == "the request nests deeper than 64 levels");
  // Brackets inside strings do not count.
  std::optional<std::uint64_t> string_id;
  CHECK(parse_request(R"({"id": 1, "op": "info", "vm": ")" + std::string(100, '[') + R"("})",
                      string_id)
            .has_value());
  // Even a refused request names its id, so that the reply can answer it.
  parse_request(R"({"id": 9, "op": "nope"})", id);
  CHECK(id == std::optional<std::uint64_t>(9));
  // Every refusal is the client's fault: a protocol error.
  std::optional<std::uint64_t> ignored;
  CHECK(parse_request(R"({"id": 1, "op": "stop"})", ignored).error().kind == ErrorKind::protocol);
}

TEST_CASE(
    "every request type comes back from the wire as it was encoded, and only fds' types take fds") {
  const json vm = {{"name", "a"}, {"kernel", {{"fd", 0}}}};
  const json fleet = {{"name", "f"}, {"vms", json::array()}};
  const std::vector<RequestBody> bodies = {
      CreateRequest{vm},
      ListRequest{true},
      InfoRequest{*parse_target("web")},
      StopRequest{*parse_target("2049"), true, 1500},
      StopRequest{.vm = *parse_target("web")},
      LogsRequest{*parse_target("web"), 20, true},
      SubscribeRequest{*parse_target("web")},
      PingRequest{},
      VersionRequest{},
      FleetUpRequest{fleet, true},
      FleetStatusRequest{"f", true},
      FleetStatusRequest{},
      FleetDownRequest{"f", false, 300},
      FleetRestartRequest{"f", *parse_target("web-0")},
      ConsoleRequest{*parse_target("web"), true, true},
      ConsoleRequest{.vm = *parse_target("2049"), .write = false},
      ConsoleInputRequest{"web", std::string("ls\r\x03\x00\xff", 6)},
      ConsoleDetachRequest{"web"},
      DumpRequest{*parse_target("web"), true},
      DumpRequest{.vm = *parse_target("web")},
  };
  for (std::uint64_t i = 0; i < bodies.size(); ++i) {
    const auto encoded = encode_request(i, bodies[i]);
    INFO(encoded.dump());
    std::optional<std::uint64_t> id;
    auto parsed = parse_request(encoded.dump(), id);
    REQUIRE(parsed.has_value());
    CHECK(parsed->id == i);
    REQUIRE(parsed->body.index() == bodies[i].index());
    CHECK(op_of(parsed->body) == encoded["op"].get<std::string>());
    CHECK(encode_request(i, parsed->body) == encoded);
    CHECK(takes_fds(parsed->body) == (std::holds_alternative<CreateRequest>(bodies[i]) ||
                                      std::holds_alternative<FleetUpRequest>(bodies[i]) ||
                                      std::holds_alternative<DumpRequest>(bodies[i])));
  }
  CHECK(std::get<StopRequest>(bodies[3]).vm.cid == std::optional<std::uint32_t>(2049));
  // Console input is bytes, whatever they are, carried as base64.
  std::optional<std::uint64_t> id;
  auto input = parse_request(encode_request(1, bodies[16]).dump(), id);
  CHECK(std::get<ConsoleInputRequest>(input->body).bytes == std::string("ls\r\x03\x00\xff", 6));
  CHECK(refusal(R"({"id": 1, "op": "console_input", "vm": "web", "data": "not base64!"})") ==
        "'data' must be base64 text");
  CHECK(refusal(R"({"id": 1, "op": "console_input", "vm": "2049", "data": ""})") ==
        "'vm' must be a VM name");
  CHECK_FALSE(parse_target("").has_value());
  CHECK_FALSE(parse_target("4294967296").has_value());
  CHECK(parse_target("4294967295")->cid == std::optional<std::uint32_t>(4294967295u));
}

TEST_CASE("a VM description travels as JSON with fds, and comes back as the same spec") {
  test::TempDir dir;
  VmSpec spec;
  spec.name = "wire";
  spec.vmm = VmmKind::crosvm;
  spec.kernel = dir.write("vmlinuz", "kernel");
  spec.initrd = dir.write("initrd", "initrd");
  spec.params = "console=ttyS0";
  spec.memory_mib = 512;
  spec.debug = DebugLevel::full;
  spec.ready = ConsoleReady{"ready"};
  spec.cid = 4000;
  spec.stop_timeout = std::chrono::milliseconds(1500);
  spec.disks.push_back(RawDisk{dir.write("raw.img", std::string(512, 'r')), true});
  spec.disks.push_back(CompositeDisk{{{"boot", dir.write("boot.img", "b"), false}}});
  auto message = spec_to_message(spec);
  REQUIRE(message.has_value());
  CHECK(message->fds.size() == 4);
  // Writable files are opened read-write by the client; the rest read-only.
  CHECK((fcntl(message->fds[2].get(), F_GETFL) & O_ACCMODE) == O_RDWR);
  CHECK((fcntl(message->fds[3].get(), F_GETFL) & O_ACCMODE) == O_RDONLY);
  const json wire = json::parse(message->vm.dump());
  auto back = spec_from_message(wire, std::move(message->fds));
  REQUIRE(back.has_value());
  CHECK(back->name == "wire");
  CHECK(back->vmm == VmmKind::crosvm);
  CHECK(back->kernel.string().rfind("/proc/self/fd/", 0) == 0);
  CHECK(back->handed_fds.size() == 4);
  CHECK(back->memory_mib == 512);
  CHECK(back->cid == std::optional<std::uint32_t>(4000));
  CHECK(back->stop_timeout == std::chrono::milliseconds(1500));
  CHECK(back->ready == ReadyCondition{ConsoleReady{"ready"}});
  REQUIRE(back->disks.size() == 2);
  CHECK(std::get<RawDisk>(back->disks[0]).writable);
  CHECK(std::get<CompositeDisk>(back->disks[1]).partitions[0].label == "boot");
}

TEST_CASE("a firmware-booted VM travels with its bootloader, variable store and partition types") {
  test::TempDir dir;
  VmSpec spec;
  spec.name = "uefi";
  spec.bootloader = dir.write("OVMF_CODE.fd", "code");
  spec.nvram_template = dir.write("OVMF_VARS.fd", "vars");
  spec.ready_timeout = std::chrono::milliseconds(30'000);
  spec.ready = ConsoleReady{"up"};
  spec.disks.push_back(CompositeDisk{{{"esp", dir.write("esp.img", "e"), false, PartitionType::esp},
                                      {"data", dir.write("data.img", "d"), false}}});
  auto message = spec_to_message(spec);
  REQUIRE(message.has_value());
  CHECK(message->fds.size() == 4);
  auto back = spec_from_message(json::parse(message->vm.dump()), std::move(message->fds));
  REQUIRE(back.has_value());
  CHECK(back->kernel.empty());
  CHECK(back->bootloader->string().rfind("/proc/self/fd/", 0) == 0);
  CHECK(back->nvram_template->string().rfind("/proc/self/fd/", 0) == 0);
  CHECK(back->ready_timeout == std::chrono::milliseconds(30'000));
  const auto& parts = std::get<CompositeDisk>(back->disks[0]).partitions;
  CHECK(parts[0].type == PartitionType::esp);
  CHECK(parts[1].type == PartitionType::linux_data);
  // Both at once is refused by the daemon too.
  json both = json::parse(message->vm.dump());
  both["kernel"] = {{"fd", 4}};
  std::vector<UniqueFd> fds;
  for (const char* name : {"a", "b", "c", "d", "e"})
    fds.push_back(open_file(dir.write(name, "x")));
  CHECK(spec_refusal(both, std::move(fds)) ==
        "vm.bootloader: a VM boots a kernel or a bootloader, not both");
}

TEST_CASE("a VM description with the wrong fields or fds is refused, naming the place") {
  test::TempDir dir;
  const auto kernel = dir.write("vmlinuz", "kernel");
  const auto one_fd = [&] {
    std::vector<UniqueFd> fds;
    fds.push_back(open_file(kernel));
    return fds;
  };
  const json base = {{"name", "x"}, {"kernel", {{"fd", 0}}}};
  CHECK(spec_from_message(base, one_fd()).has_value());

  json unknown = base;
  unknown["vmm_args"] = "-S";
  CHECK(spec_refusal(unknown, one_fd()) == "vm.vmm_args: unknown field");
  // Whether a client may name a VMM binary is the session's decision; its form is checked here.
  json relative_binary = base;
  relative_binary["vmm_binary"] = "bin/crosvm";
  CHECK(spec_refusal(relative_binary, one_fd()) == "vm.vmm_binary: must be an absolute path");
  json bad_name = base;
  bad_name["name"] = "../etc";
  CHECK_THAT(spec_refusal(bad_name, one_fd()), Catch::StartsWith("vm.name: '../etc' is not"));
  json out_of_range = base;
  out_of_range["kernel"] = {{"fd", 3}};
  CHECK(spec_refusal(out_of_range, one_fd()) ==
        "vm.kernel.fd: index 3, but only 1 fds came with the message");
  json twice = base;
  twice["initrd"] = {{"fd", 0}};
  CHECK(spec_refusal(twice, one_fd()) == "vm.initrd.fd: fd 0 is used twice");
  std::vector<UniqueFd> extra = one_fd();
  extra.push_back(open_file(kernel));
  CHECK(spec_refusal(base, std::move(extra)) ==
        "vm: fd 1 came with the message but nothing names it");
  std::vector<UniqueFd> directory;
  directory.push_back(open_file(dir.path(), O_RDONLY | O_DIRECTORY));
  CHECK(spec_refusal(base, std::move(directory)) ==
        "vm.kernel.fd: fd 0 is a directory, not a regular file");
  std::vector<UniqueFd> path_only;
  path_only.push_back(open_file(kernel, O_PATH));
  CHECK(spec_refusal(base, std::move(path_only)) ==
        "vm.kernel.fd: fd 0 is an O_PATH fd: open the file for reading");
  json writable_disk = base;
  writable_disk["disks"] = json::array({{{"fd", 1}, {"writable", true}}});
  std::vector<UniqueFd> read_only = one_fd();
  read_only.push_back(open_file(kernel, O_RDONLY));
  CHECK(spec_refusal(writable_disk, std::move(read_only)) ==
        "vm.disks[0].fd: fd 1 is not open for reading and writing, and this disk is writable");
  json digits = base;
  digits["name"] = "4242";
  CHECK_THAT(spec_refusal(digits, one_fd()), Catch::Contains("not all digits"));
  std::vector<UniqueFd> socket_fd;
  socket_fd.emplace_back(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  CHECK(spec_refusal(base, std::move(socket_fd)) ==
        "vm.kernel.fd: fd 0 is a socket, not a regular file");
  json wrong_type = base;
  wrong_type["memory_mib"] = "lots";
  CHECK(spec_refusal(wrong_type, one_fd()) == "vm.memory_mib: must be an integer");
  json tiny = base;
  tiny["memory_mib"] = 1;
  CHECK(spec_refusal(tiny, one_fd()) == "vm.memory_mib: must be between 16 and 1048576");
  json disk = base;
  disk["disks"] = json::array({{{"fd", 0}, {"partitions", json::array()}}});
  CHECK(spec_refusal(disk, one_fd()) ==
        "vm.disks[0]: a disk has either 'fd' or 'partitions', not both");
  CHECK(spec_refusal(json{{"name", "x"}}, {}) ==
        "vm.kernel: a VM boots a kernel or a bootloader: give one of them");
}

TEST_CASE("base64 carries any bytes, and refuses what is not base64") {
  for (const std::string& bytes :
       {std::string(), std::string("f"), std::string("fo"), std::string("foo"), std::string("foob"),
        std::string("\x00\xff\x1d\r\n", 5)}) {
    CHECK(base64_decode(base64_encode(bytes)) == bytes);
  }
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK_FALSE(base64_decode("Zm8").has_value());       // length
  CHECK_FALSE(base64_decode("Z=8=").has_value());      // padding inside
  CHECK_FALSE(base64_decode("Zm9v!A==").has_value());  // alphabet
}

TEST_CASE(
    "a fleet's networks and its VMs' interfaces travel as JSON, and the daemon checks "
    "their rules again") {
  test::TempDir dir;
  config::FleetSpec fleet;
  fleet.name = "nets";
  fleet.concurrency = 2;
  fleet.networks.push_back({"back", parse_subnet("10.30.0.0/24"), true});
  fleet.networks.push_back({"front", std::nullopt, false});
  config::FleetVm vm;
  vm.spec.name = "db";
  vm.spec.kernel = dir.write("vmlinuz", "kernel");
  vm.spec.nics.push_back({"back", parse_ipv4("10.30.0.10"), parse_mac("02:00:00:00:00:10")});
  vm.spec.nics.push_back({"front", std::nullopt, std::nullopt});
  vm.group = "db";
  vm.placement = {{"h1", "h2"}, true, config::OnHostLoss::wait};
  fleet.vms.push_back(vm);
  auto message = fleet_to_message(fleet);
  REQUIRE(message);
  const json wire = json::parse(message->fleet.dump());
  auto back = fleet_from_message(wire, std::move(message->fds));
  INFO((back ? "" : back.error().message));
  REQUIRE(back);
  CHECK(back->networks == fleet.networks);
  CHECK(back->vms[0].spec.nics == vm.spec.nics);
  CHECK(back->vms[0].placement == vm.placement);  // where a cluster may run it

  json bad_host = wire;
  bad_host["vms"][0]["placement"]["hosts"][0] = "Not A Host";
  auto fds = fleet_to_message(fleet);
  REQUIRE(fds);
  CHECK_THAT(fleet_from_message(bad_host, std::move(fds->fds)).error().message,
             Catch::Contains("is not a host name"));

  // A client that skipped the checks: an address outside its network's subnet.
  json outside = wire;
  outside["vms"][0]["vm"]["networks"][0]["address"] = "10.31.0.10";
  auto again = fleet_to_message(fleet);
  REQUIRE(again);
  auto refused = fleet_from_message(outside, std::move(again->fds));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind == ErrorKind::protocol);
  CHECK_THAT(refused.error().message, Catch::Contains("10.31.0.10 is not a VM's address in back"));
}

TEST_CASE("replicas sharing a kernel share its fd, and each shows the kernel's path") {
  test::TempDir dir;
  config::FleetSpec fleet;
  fleet.name = "replicas";
  fleet.concurrency = 2;
  const auto kernel = dir.write("vmlinuz", "kernel");
  for (const char* name : {"r-0", "r-1", "r-2"}) {
    config::FleetVm vm;
    vm.spec.name = name;
    // The last one names it another way: the same file, one fd, one name.
    vm.spec.kernel = std::string(name) == "r-2" ? dir / "." / "vmlinuz" : kernel;
    fleet.vms.push_back(vm);
  }
  auto message = fleet_to_message(fleet);
  REQUIRE(message);
  CHECK(message->fds.size() == 1);
  const json wire = json::parse(message->fleet.dump());
  auto back = fleet_from_message(wire, std::move(message->fds));
  INFO((back ? "" : back.error().message));
  REQUIRE(back);
  for (const auto& vm : back->vms) {
    CHECK(vm.spec.kernel.string().starts_with("/proc/self/fd/"));
    CHECK(vm.spec.shown(vm.spec.kernel) == kernel.string());
  }
}
