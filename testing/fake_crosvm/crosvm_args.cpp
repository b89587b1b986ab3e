#include "testing/fake_crosvm/crosvm_args.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

namespace crosvisor::fake_crosvm {
namespace {

enum class Arity { flag, single, repeated };

struct OptionSpec {
  std::string_view name;  // long name without dashes
  char short_name;        // 0 when there is none
  Arity arity;
};

// The options of `crosvm` itself (CrosvmCmdlineArgs).
constexpr OptionSpec kGlobalOptions[] = {
    {"extended-status", 0, Arity::flag},
    {"no-syslog", 0, Arity::flag},
    {"log-level", 0, Arity::single},
    {"syslog-tag", 0, Arity::single},
};

// The options of `crosvm run` that a supervisor of Linux guests uses (RunCommand); the rest of
// crosvm's long list is refused as unknown, so a new option in our argv fails loudly here.
constexpr OptionSpec kRunOptions[] = {
    {"disable-sandbox", 0, Arity::flag}, {"protected-vm", 0, Arity::flag},
    {"no-balloon", 0, Arity::flag},      {"no-rng", 0, Arity::flag},
    {"no-usb", 0, Arity::flag},          {"name", 0, Arity::single},
    {"mem", 'm', Arity::single},         {"cpus", 'c', Arity::single},
    {"initrd", 'i', Arity::single},      {"bios", 0, Arity::single},
    {"socket", 's', Arity::single},      {"vsock", 0, Arity::single},
    {"cid", 0, Arity::single},           {"params", 'p', Arity::repeated},
    {"block", 'b', Arity::repeated},     {"disk", 'd', Arity::repeated},
    {"rwdisk", 0, Arity::repeated},      {"serial", 0, Arity::repeated},
    {"net", 0, Arity::repeated},
};

using Values = std::map<std::string, std::vector<std::string>, std::less<>>;

template <std::size_t N>
const OptionSpec* find_option(const OptionSpec (&table)[N], std::string_view token) {
  for (const auto& option : table) {
    if (token.size() > 2 && token.substr(0, 2) == "--" && token.substr(2) == option.name)
      return &option;
    if (token.size() == 2 && token[0] == '-' && option.short_name != 0 &&
        token[1] == option.short_name)
      return &option;
  }
  return nullptr;
}

Error invalid(std::string message) {
  return Error{ErrorKind::invalid_config, std::move(message)};
}

// What the arguments mean is wrong: crosvm's run error, exit 1.
Error refused(std::string message) {
  return Error{ErrorKind::launch, std::move(message)};
}

// Reads options of `table` from args[i...] into `values` until the first positional argument;
// returns the index of that argument (args.size() when there is none).
template <std::size_t N>
Expected<std::size_t> read_options(const OptionSpec (&table)[N],
                                   const std::vector<std::string>& args, std::size_t i,
                                   Values& values, std::vector<std::string>* positionals) {
  for (; i < args.size(); ++i) {
    const std::string& token = args[i];
    if (token.empty() || token[0] != '-' || token == "-") {
      if (!positionals)
        return i;
      positionals->push_back(token);
      continue;
    }
    const OptionSpec* option = find_option(table, token);
    if (!option)
      return std::unexpected(invalid("Unrecognized argument: " + token));
    const std::string name(option->name);
    if (option->arity == Arity::flag) {
      if (values.count(name) != 0)
        return std::unexpected(invalid("Duplicate option: --" + name));
      values[name].push_back("");
      continue;
    }
    if (i + 1 >= args.size())
      return std::unexpected(invalid("No value provided for option '--" + name + "'."));
    const std::string value = args[++i];
    if (option->arity == Arity::single && values.count(name) != 0)
      return std::unexpected(invalid("Duplicate option: --" + name));
    values[name].push_back(value);
  }
  return i;
}

std::optional<std::uint64_t> parse_number(std::string_view text) {
  int base = 10;
  if (text.rfind("0x", 0) == 0) {
    text.remove_prefix(2);
    base = 16;
  }
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || error != std::errc() || end != text.data() + text.size())
    return std::nullopt;
  return value;
}

// serde_keyvalue: "first[,key=value|key]...", where a bare first item is the value of
// `first_key` and a bare later key is a boolean set to true.
Expected<std::map<std::string, std::string>> key_values(const std::string& option,
                                                        const std::string& text,
                                                        std::string_view first_key,
                                                        const std::set<std::string>& allowed) {
  std::map<std::string, std::string> result;
  std::size_t start = 0;
  bool first = true;
  while (start <= text.size()) {
    const auto comma = text.find(',', start);
    const std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (item.empty())
      return std::unexpected(invalid("invalid value for --" + option + ": empty field"));
    const auto eq = item.find('=');
    std::string key = eq == std::string::npos ? item : item.substr(0, eq);
    std::string value = eq == std::string::npos ? "true" : item.substr(eq + 1);
    if (first && eq == std::string::npos && !first_key.empty()) {
      key = std::string(first_key);
      value = item;
    }
    first = false;
    if (allowed.count(key) == 0)
      return std::unexpected(
          invalid("invalid value for --" + option + ": unknown field `" + key + "`"));
    if (result.count(key) != 0)
      return std::unexpected(
          invalid("invalid value for --" + option + ": duplicate field `" + key + "`"));
    result[key] = value;
  }
  return result;
}

Expected<bool> parse_bool(const std::string& option, const std::string& value) {
  if (value == "true")
    return true;
  if (value == "false")
    return false;
  return std::unexpected(
      invalid("invalid value for --" + option + ": expected a boolean, got `" + value + "`"));
}

Expected<std::uint64_t> number_or_key(const std::string& option, const std::string& text,
                                      std::string_view key) {
  auto fields = key_values(option, text, key, {std::string(key)});
  if (!fields)
    return std::unexpected(fields.error());
  const auto number = parse_number((*fields)[std::string(key)]);
  if (!number)
    return std::unexpected(invalid("invalid value for --" + option + ": `" + text + "`"));
  return *number;
}

Expected<BlockOption> parse_block(const std::string& option, const std::string& text,
                                  bool read_only_default) {
  static const std::set<std::string> kKeys = {"path",
                                              "ro",
                                              "root",
                                              "sparse",
                                              "block-size",
                                              "id",
                                              "direct",
                                              "async-executor",
                                              "multiple-workers",
                                              "packed-queue",
                                              "bootindex",
                                              "pci-address",
                                              "lock"};
  auto fields = key_values(option, text, "path", kKeys);
  if (!fields)
    return std::unexpected(fields.error());
  BlockOption block;
  block.read_only = read_only_default;
  if (fields->count("path") == 0 || (*fields)["path"].empty())
    return std::unexpected(invalid("invalid value for --" + option + ": missing path"));
  block.path = (*fields)["path"];
  for (const auto& flag :
       {"ro", "root", "sparse", "direct", "multiple-workers", "packed-queue", "lock"}) {
    if (fields->count(flag) == 0)
      continue;
    auto value = parse_bool(option, (*fields)[flag]);
    if (!value)
      return std::unexpected(value.error());
    if (std::string_view(flag) == "ro")
      block.read_only = *value;
    if (std::string_view(flag) == "lock")
      block.lock = *value;
  }
  // crosvm forces the access of the deprecated forms, whatever `ro` says.
  if (option == "disk")
    block.read_only = true;
  if (option == "rwdisk")
    block.read_only = false;
  return block;
}

Expected<SerialOption> parse_serial(const std::string& text) {
  static const std::set<std::string> kKeys = {"type",    "path",     "input", "hardware", "num",
                                              "console", "earlycon", "stdin", "name"};
  auto fields = key_values("serial", text, "", kKeys);
  if (!fields)
    return std::unexpected(fields.error());
  SerialOption serial;
  static const std::set<std::string> kTypes = {"stdout", "syslog", "sink",
                                               "file",   "unix",   "unix-stream"};
  if (fields->count("type") == 0)
    return std::unexpected(invalid("invalid value for --serial: missing field `type`"));
  serial.type = (*fields)["type"];
  if (kTypes.count(serial.type) == 0)
    return std::unexpected(
        invalid("invalid value for --serial: unknown type `" + serial.type + "`"));
  if (fields->count("path"))
    serial.path = (*fields)["path"];
  if (fields->count("input"))
    serial.input = (*fields)["input"];
  if ((serial.type == "file" || serial.type == "unix" || serial.type == "unix-stream") &&
      !serial.path) {
    return std::unexpected(
        invalid("invalid value for --serial: type " + serial.type + " needs a path"));
  }
  if (fields->count("hardware")) {
    serial.hardware = (*fields)["hardware"];
    static const std::set<std::string> kHardware = {"serial", "virtio-console", "debugcon",
                                                    "legacy-virtio-console"};
    if (kHardware.count(serial.hardware) == 0)
      return std::unexpected(
          invalid("invalid value for --serial: unknown hardware `" + serial.hardware + "`"));
  }
  if (fields->count("num")) {
    const auto num = parse_number((*fields)["num"]);
    if (!num || *num < 1 || *num > 4)
      return std::unexpected(invalid("invalid value for --serial: num must be 1 to 4"));
    serial.num = static_cast<std::uint32_t>(*num);
  }
  for (const auto& flag : {"console", "earlycon", "stdin"}) {
    if (fields->count(flag) == 0)
      continue;
    auto value = parse_bool("serial", (*fields)[flag]);
    if (!value)
      return std::unexpected(value.error());
    if (std::string_view(flag) == "console")
      serial.console = *value;
  }
  return serial;
}

bool is_mac(std::string_view text) {
  if (text.size() != 17)
    return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool colon = i % 3 == 2;
    if (colon != (text[i] == ':') ||
        (!colon && !std::isxdigit(static_cast<unsigned char>(text[i]))))
      return false;
  }
  return true;
}

// crosvm's NetParameters: exactly one of tap-name, tap-fd or host-ip (with netmask and mac), and
// a quoted MAC (serde_keyvalue reads a string with colons only between quotes).
Expected<NetOption> parse_net(const std::string& text) {
  static const std::set<std::string> kKeys = {"tap-name", "tap-fd",       "host-ip",
                                              "netmask",  "mac",          "vhost-net",
                                              "vq-pairs", "packed-queue", "pci-address"};
  auto fields = key_values("net", text, "", kKeys);
  if (!fields)
    return std::unexpected(fields.error());
  NetOption net;
  const int modes = static_cast<int>(fields->count("tap-name") + fields->count("tap-fd") +
                                     fields->count("host-ip"));
  if (modes != 1) {
    return std::unexpected(
        invalid("invalid value for --net: exactly one of tap-name, tap-fd or host-ip"));
  }
  if (fields->count("tap-fd")) {
    const auto fd = parse_number((*fields)["tap-fd"]);
    if (!fd || *fd > 1u << 20)
      return std::unexpected(invalid("invalid value for --net: bad tap-fd"));
    net.tap_fd = static_cast<int>(*fd);
  }
  if (fields->count("tap-name"))
    net.tap_name = (*fields)["tap-name"];
  if (fields->count("host-ip"))
    net.host_ip = (*fields)["host-ip"];
  if (fields->count("mac")) {
    std::string mac = (*fields)["mac"];
    if (mac.size() < 2 || mac.front() != '"' || mac.back() != '"' ||
        !is_mac(std::string_view(mac).substr(1, mac.size() - 2))) {
      return std::unexpected(invalid("invalid value for --net: bad mac `" + mac + "`"));
    }
    net.mac = mac.substr(1, mac.size() - 2);
  }
  return net;
}

}  // namespace

std::optional<int> proc_fd_number(const std::string& path) {
  static const std::string kPrefix = "/proc/self/fd/";
  if (path.rfind(kPrefix, 0) != 0)
    return std::nullopt;
  const std::string_view digits = std::string_view(path).substr(kPrefix.size());
  int number = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
  if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() || number < 0)
    return std::nullopt;
  return number;
}

std::vector<std::string> prepare_argh_args(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const auto& arg : args) {
    const auto eq = arg.find('=');
    if (!arg.empty() && arg[0] == '-' && eq != std::string::npos) {
      out.push_back(arg.substr(0, eq));
      out.push_back(arg.substr(eq + 1));
    } else {
      out.push_back(arg);
    }
  }
  return out;
}

Expected<RunArgs> parse_crosvm_args(const std::vector<std::string>& raw_args) {
  const std::vector<std::string> args = prepare_argh_args(raw_args);
  RunArgs run;
  Values global;
  auto command_at = read_options(kGlobalOptions, args, 0, global, nullptr);
  if (!command_at)
    return std::unexpected(command_at.error());
  if (*command_at >= args.size())
    return std::unexpected(invalid("One of the following subcommands must be present: run"));
  if (args[*command_at] != "run")
    return std::unexpected(invalid("Unrecognized argument: " + args[*command_at]));
  run.extended_status = global.count("extended-status") != 0;
  run.no_syslog = global.count("no-syslog") != 0;
  if (global.count("log-level"))
    run.log_level = global["log-level"].front();

  Values values;
  std::vector<std::string> positionals;
  auto end = read_options(kRunOptions, args, *command_at + 1, values, &positionals);
  if (!end)
    return std::unexpected(end.error());
  if (positionals.size() > 1)
    return std::unexpected(invalid("Unrecognized argument: " + positionals[1]));
  if (!positionals.empty())
    run.kernel = positionals.front();

  const auto single = [&](const char* name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end())
      return std::nullopt;
    return it->second.front();
  };
  run.disable_sandbox = values.count("disable-sandbox") != 0;
  run.protected_vm = values.count("protected-vm") != 0;
  run.name = single("name");
  run.initrd = single("initrd");
  run.bios = single("bios");
  run.socket = single("socket");
  if (auto mem = single("mem")) {
    auto value = number_or_key("mem", *mem, "size");
    if (!value)
      return std::unexpected(value.error());
    run.mem_mib = *value;
  }
  if (auto cpus = single("cpus")) {
    auto value = number_or_key("cpus", *cpus, "num-cores");
    if (!value)
      return std::unexpected(value.error());
    if (*value == 0)
      return std::unexpected(invalid("invalid value for --cpus: must be at least 1"));
    run.cpus = static_cast<std::uint32_t>(*value);
  }
  if (auto vsock = single("vsock")) {
    auto fields = key_values("vsock", *vsock, "cid", {"cid", "device", "max-queue-sizes"});
    if (!fields)
      return std::unexpected(fields.error());
    const auto cid = parse_number((*fields)["cid"]);
    if (!cid || *cid < 3 || *cid > 0xFFFFFFFEu)
      return std::unexpected(invalid("invalid value for --vsock: bad cid `" + *vsock + "`"));
    run.cid = static_cast<std::uint32_t>(*cid);
  }
  if (auto cid = single("cid")) {
    if (run.cid)
      return std::unexpected(refused("`--cid` and `--vsock` cannot both be given"));
    const auto number = parse_number(*cid);
    if (!number)
      return std::unexpected(invalid("invalid value for --cid: `" + *cid + "`"));
    run.cid = static_cast<std::uint32_t>(*number);
  }
  for (const auto& param : values["params"]) {
    if (!run.params.empty())
      run.params += ' ';
    run.params += param;
  }
  for (const auto& [option, read_only] :
       {std::pair<const char*, bool>{"block", false}, {"disk", true}, {"rwdisk", false}}) {
    for (const auto& text : values[option]) {
      auto block = parse_block(option, text, read_only);
      if (!block)
        return std::unexpected(block.error());
      run.blocks.push_back(*block);
    }
  }
  for (const auto& text : values["serial"]) {
    auto serial = parse_serial(text);
    if (!serial)
      return std::unexpected(serial.error());
    for (const auto& other : run.serials) {
      if (other.hardware == serial->hardware && other.num == serial->num)
        return std::unexpected(refused("serial hardware " + serial->hardware + " num " +
                                       std::to_string(serial->num) + " given twice"));
    }
    run.serials.push_back(*serial);
  }
  for (const auto& text : values["net"]) {
    auto net = parse_net(text);
    if (!net)
      return std::unexpected(net.error());
    run.nets.push_back(*net);
  }
  // Config validation (crosvm: "Executable is not specified").
  if (!run.kernel && !run.bios)
    return std::unexpected(refused("Executable is not specified"));
  if (run.kernel && run.bios)
    return std::unexpected(refused("--bios and a kernel cannot both be given"));
  // x86: the kernel command line is printable ASCII of at most 2047 bytes, with what crosvm adds
  // itself (console=ttyS0 for a console on the serial port).
  std::string cmdline = run.params;
  for (const auto& serial : run.serials) {
    if (serial.console && serial.hardware == "serial")
      cmdline += " console=ttyS" + std::to_string(serial.num - 1);
  }
  if (cmdline.size() > 2047)
    return std::unexpected(refused(
        "the kernel command line is too long: " + std::to_string(cmdline.size()) + " bytes"));
  if (std::any_of(cmdline.begin(), cmdline.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e;
      }))
    return std::unexpected(refused("the kernel command line must be printable ASCII"));
  return run;
}

std::vector<int> named_fds(const RunArgs& args) {
  std::vector<std::string> paths;
  for (const auto& path : {args.kernel, args.bios, args.initrd, args.socket}) {
    if (path)
      paths.push_back(*path);
  }
  for (const auto& block : args.blocks)
    paths.push_back(block.path);
  for (const auto& serial : args.serials) {
    if (serial.path)
      paths.push_back(*serial.path);
    if (serial.input)
      paths.push_back(*serial.input);
  }
  std::vector<int> fds;
  for (const auto& path : paths) {
    if (auto number = proc_fd_number(path))
      fds.push_back(*number);
  }
  for (const auto& net : args.nets) {
    if (net.tap_fd)
      fds.push_back(*net.tap_fd);
  }
  std::sort(fds.begin(), fds.end());
  fds.erase(std::unique(fds.begin(), fds.end()), fds.end());
  return fds;
}

}  // namespace crosvisor::fake_crosvm
