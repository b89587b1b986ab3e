// The pure half of networks (addresses, MACs, the address book, dnsmasq's arguments, subnet
// choice) and, as root, the real half: a namespace with a bridge and a TAP in it.
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>

#include "crosvisor/network_spec.hpp"
#include "net/address_book.hpp"
#include "net/dnsmasq.hpp"
#include "net/links.hpp"
#include "net/namespace.hpp"
#include "net/network_host.hpp"
#include "net/subnets.hpp"
#include "process/pidfd.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;

namespace {
Ipv4Address ip(const char* text) {
  auto address = parse_ipv4(text);
  REQUIRE(address);
  return *address;
}
Ipv4Subnet subnet(const char* text) {
  auto parsed = parse_subnet(text);
  REQUIRE(parsed);
  return *parsed;
}
bool has(const std::vector<std::string>& args, const std::string& arg) {
  return std::find(args.begin(), args.end(), arg) != args.end();
}
}  // namespace

TEST_CASE("addresses, subnets and MACs parse strictly and print back the same") {
  CHECK(to_string(ip("10.1.2.3")) == "10.1.2.3");
  for (const char* bad : {"10.1.2", "10.1.2.256", "10.1.2.3.4", "a.b.c.d", "", "010.1.2.3x"})
    CHECK_FALSE(parse_ipv4(bad));
  CHECK(to_string(subnet("10.20.0.0/24")) == "10.20.0.0/24");
  CHECK_FALSE(parse_subnet("10.20.0.1/24"));  // not its first address
  CHECK_FALSE(parse_subnet("10.0.0.0/8"));    // wider than /16
  CHECK_FALSE(parse_subnet("10.0.0.0/30"));   // no room for VMs
  CHECK_FALSE(parse_subnet("10.0.0.0"));
  const auto lan = subnet("10.20.0.0/24");
  CHECK(lan.gateway() == ip("10.20.0.1"));
  CHECK(lan.assignable(ip("10.20.0.2")));
  for (const char* not_a_vm : {"10.20.0.0", "10.20.0.1", "10.20.0.255", "10.20.1.2"})
    CHECK_FALSE(lan.assignable(ip(not_a_vm)));
  CHECK(lan.overlaps(subnet("10.20.0.0/16")));
  CHECK_FALSE(lan.overlaps(subnet("10.20.1.0/24")));

  auto mac = parse_mac("02:AB:cd:00:11:ff");
  REQUIRE(mac);
  CHECK(to_string(*mac) == "02:ab:cd:00:11:ff");
  CHECK_FALSE(parse_mac("02:ab:cd:00:11"));
  CHECK_FALSE(parse_mac("02-ab-cd-00-11-ff"));
}

TEST_CASE(
    "a derived MAC is the same every time, locally administered, unicast, and differs "
    "by fleet, VM and interface") {
  const auto mac = derived_mac("demo", "web-0", 0);
  CHECK(mac == derived_mac("demo", "web-0", 0));
  CHECK((mac.bytes[0] & 0x02) != 0);
  CHECK(mac.unicast());
  CHECK(mac != derived_mac("demo", "web-1", 0));
  CHECK(mac != derived_mac("demo", "web-0", 1));
  CHECK(mac != derived_mac("other", "web-0", 0));
}

TEST_CASE(
    "the address book: fixed addresses, the lowest free one, the same one again, and "
    "refusals") {
  net::AddressBook book(subnet("10.5.0.0/29"));  // .2 to .6 for VMs
  const auto mac = [](int n) { return derived_mac("f", "vm", static_cast<std::size_t>(n)); };
  auto db = book.join("db", 0, ip("10.5.0.4"), std::nullopt, mac(1));
  REQUIRE(db);
  CHECK(db->address == ip("10.5.0.4"));
  auto web = book.join("web", 0, std::nullopt, std::nullopt, mac(2));
  REQUIRE(web);
  CHECK(web->address == ip("10.5.0.2"));
  CHECK(web->mac == mac(2));
  // Started again: the same address and MAC.
  auto again = book.join("web", 0, std::nullopt, std::nullopt, mac(2));
  REQUIRE(again);
  CHECK(again->address == web->address);
  CHECK(book.members().size() == 2);

  auto taken = book.join("x", 0, ip("10.5.0.4"), std::nullopt, mac(3));
  REQUIRE_FALSE(taken);
  CHECK(taken.error().kind == ErrorKind::conflict);
  auto outside = book.join("x", 0, ip("10.5.0.9"), std::nullopt, mac(3));
  REQUIRE_FALSE(outside);
  CHECK(outside.error().kind == ErrorKind::invalid_config);
  auto same_mac = book.join("x", 0, std::nullopt, mac(2), mac(3));
  REQUIRE_FALSE(same_mac);
  CHECK(same_mac.error().kind == ErrorKind::conflict);

  REQUIRE(book.join("c", 0, std::nullopt, std::nullopt, mac(4)));  // .3
  REQUIRE(book.join("d", 0, std::nullopt, std::nullopt, mac(5)));  // .5
  REQUIRE(book.join("e", 0, std::nullopt, std::nullopt, mac(6)));  // .6
  auto full = book.join("f", 0, std::nullopt, std::nullopt, mac(7));
  REQUIRE_FALSE(full);
  CHECK(full.error().kind == ErrorKind::limit);
}

TEST_CASE("dnsmasq serves fixed addresses only, never a router, and DNS only when asked") {
  const auto lan = subnet("10.9.0.0/24");
  const auto with_dns = net::dnsmasq_args(lan, true, "/run/x");
  CHECK(has(with_dns, "--conf-file=/dev/null"));
  CHECK(has(with_dns, "--dhcp-range=10.9.0.1,static,255.255.255.0,infinite"));
  CHECK(has(with_dns, "--dhcp-option=option:router"));
  CHECK(has(with_dns, "--dhcp-hostsdir=/run/x/dhcp-hosts.d"));
  CHECK(has(with_dns, "--hostsdir=/run/x/hosts.d"));
  CHECK(has(with_dns, "--dhcp-option=option:dns-server,10.9.0.1"));
  CHECK(has(with_dns, "--no-resolv"));  // never forwards a query anywhere
  CHECK(has(with_dns, "--group=root"));
  const auto without = net::dnsmasq_args(lan, false, "/run/x");
  CHECK(has(without, "--port=0"));
  CHECK_FALSE(has(without, "--hostsdir=/run/x/hosts.d"));

  const net::Member member{"web-0", 1, ip("10.9.0.7"), *parse_mac("02:00:00:00:00:07")};
  CHECK(net::dhcp_host(member) == "02:00:00:00:00:07,10.9.0.7,web-0\n");
  CHECK(net::dns_host(member) == "10.9.0.7 web-0\n");
  CHECK(net::member_file(member) == "web-0.1");
}

TEST_CASE("a network taken over knows its members again from its dnsmasq files") {
  test::TempDir dir;
  std::filesystem::create_directory(dir.path() / net::kDhcpHostsDir);
  const auto write = [&](const std::string& file, const std::string& text) {
    std::ofstream(dir.path() / net::kDhcpHostsDir / file) << text;
  };
  const net::Member web{"web-0", 1, ip("10.9.0.7"), *parse_mac("02:00:00:00:00:07")};
  write(net::member_file(web), net::dhcp_host(web));
  write("db.0", "02:00:00:00:00:08,10.9.0.8,db\n");
  write("junk", "not an entry\n");
  write("other.0", "02:00:00:00:00:09,10.9.0.9,not-other\n");  // names another VM
  write("bad.x", "02:00:00:00:00:0a,10.9.0.10,bad\n");
  auto members = net::read_members(dir.path());
  std::sort(members.begin(), members.end(),
            [](const auto& a, const auto& b) { return a.vm < b.vm; });
  REQUIRE(members.size() == 2);
  CHECK(members[0].vm == "db");
  CHECK(members[0].address == ip("10.9.0.8"));
  CHECK(members[1].vm == "web-0");
  CHECK(members[1].index == 1);
  CHECK(members[1].mac == web.mac);

  // Restored, the book gives each its address again and never gives it to another.
  net::AddressBook book(subnet("10.9.0.0/24"));
  for (auto& member : members)
    book.restore(member);
  auto again = book.join("web-0", 1, std::nullopt, std::nullopt, *parse_mac("02:00:00:00:00:99"));
  REQUIRE(again);
  CHECK(again->address == ip("10.9.0.7"));
  CHECK(again->mac == web.mac);
  auto taken = book.join("new", 0, ip("10.9.0.8"), std::nullopt, *parse_mac("02:00:00:00:00:98"));
  REQUIRE_FALSE(taken);
  CHECK(taken.error().kind == ErrorKind::conflict);
}

TEST_CASE("a network without a subnet gets the first /24 of 198.18.0.0/15 that nothing uses") {
  CHECK(net::free_subnet({}) == subnet("198.18.0.0/24"));
  CHECK(net::free_subnet({subnet("198.18.0.0/24"), subnet("198.18.1.0/24")}) ==
        subnet("198.18.2.0/24"));
  CHECK(net::free_subnet({subnet("198.18.0.0/16")}) == subnet("198.19.0.0/24"));
  CHECK_FALSE(net::free_subnet({subnet("198.18.0.0/16"), subnet("198.19.0.0/16")}));
  // This host's routes, read as the kernel prints them: none is the default route.
  for (const auto& route : net::host_routes())
    CHECK(route.prefix > 0);
}

TEST_CASE(
    "a namespace of its own holds a bridge and a TAP, the TAP fd says which namespace, "
    "and nothing of it is in the caller's") {
  if (::geteuid() != 0) {
    WARN("skipped: needs root (CAP_NET_ADMIN)");
    return;
  }
  auto space = net::NetworkNamespace::create();
  REQUIRE(space);
  UniqueFd tap;
  auto made = space->inside([&]() -> Expected<void> {
    if (auto bridge = net::add_bridge("br0"); !bridge)
      return bridge;
    if (auto address = net::set_address("br0", ip("10.77.0.1"), 24); !address)
      return address;
    if (auto up = net::bring_up("br0"); !up)
      return up;
    auto fd = net::create_tap("tap0");
    if (!fd)
      return std::unexpected(fd.error());
    tap = std::move(*fd);
    if (auto attached = net::attach_to_bridge("br0", "tap0"); !attached)
      return attached;
    return net::bring_up("tap0");
  });
  REQUIRE(made);
  ifreq request{};
  REQUIRE(::ioctl(tap.get(), TUNGETIFF, &request) == 0);
  CHECK((request.ifr_flags & IFF_TAP) != 0);
  CHECK((request.ifr_flags & IFF_VNET_HDR) != 0);
  const int tap_ns = ::ioctl(tap.get(), TUNGETDEVNETNS);
  REQUIRE(tap_ns >= 0);
  struct stat of_tap {
  }, of_space{}, mine{};
  ::fstat(tap_ns, &of_tap);
  ::close(tap_ns);
  ::fstat(space->fd(), &of_space);
  ::stat("/proc/self/ns/net", &mine);
  CHECK(of_tap.st_ino == of_space.st_ino);
  CHECK(of_tap.st_ino != mine.st_ino);
  CHECK(::if_nametoindex("br0") == 0);  // the bridge is not in the caller's namespace
  // A second TAP of the same name in the same namespace is refused, saying so.
  auto twice = space->inside([&]() -> Expected<void> {
    auto fd = net::create_tap("br0");
    if (!fd)
      return std::unexpected(fd.error());
    return {};
  });
  CHECK_FALSE(twice);
}

TEST_CASE(
    "a network left by the daemon before is found again through a process in it or a TAP a "
    "process holds, and only with its own subnet") {
  if (::geteuid() != 0) {
    WARN("skipped: needs root (CAP_NET_ADMIN)");
    return;
  }
  test::TempDir dir;
  const auto lan = subnet("10.78.0.0/24");
  auto host = net::NetworkHost::create(lan, dir.path() / "lan");
  REQUIRE(host);
  auto tap = host->add_tap();  // tap0
  REQUIRE(tap);
  struct stat original {};
  ::fstat(host->space().fd(), &original);
  const auto inode_of = [](const net::NetworkNamespace& space) {
    struct stat info {};
    ::fstat(space.fd(), &info);
    return info.st_ino;
  };

  // Through a TAP this process holds, found as a successor finds a VMM's.
  UniqueFd self(static_cast<int>(::pidfd_open(::getpid(), 0)));
  REQUIRE(self);
  auto taps = net::taps_held_by(::getpid(), self.get());
  REQUIRE_FALSE(taps.empty());
  std::optional<net::NetworkHost> again;
  for (auto& held : taps) {
    auto space = net::NetworkNamespace::of_tap(held.get());
    REQUIRE(space);
    if (inode_of(*space) != original.st_ino)
      continue;  // a TAP of another test
    CHECK_FALSE(net::NetworkHost::attach(*net::NetworkNamespace::of_tap(held.get()),
                                         subnet("10.79.0.0/24"), dir.path() / "lan"));
    auto attached = net::NetworkHost::attach(std::move(*space), lan, dir.path() / "lan");
    REQUIRE(attached);
    again.emplace(std::move(*attached));
  }
  REQUIRE(again);
  // Its next TAP is named after the one there.
  auto next = again->add_tap();
  REQUIRE(next);
  CHECK(next->name == "tap1");

  // A process's namespace, refused once the process ended (its pid may be another's by then).
  auto own = net::NetworkNamespace::of_process(::getpid(), self.get());
  REQUIRE(own);
  const pid_t child = ::fork();
  if (child == 0)
    ::_exit(0);
  UniqueFd child_fd(static_cast<int>(::pidfd_open(child, 0)));
  REQUIRE(child_fd);
  int status = 0;
  ::waitid(P_PIDFD, child_fd.get(), nullptr, WEXITED | WNOWAIT);
  auto gone = net::NetworkNamespace::of_process(child, child_fd.get());
  CHECK_FALSE(gone);
  ::waitpid(child, &status, 0);
}
