// The host side of vsock readiness callbacks: a port is listened on exactly while someone waits
// on it. No guest can connect here (no vsock transport, and tests never touch a CID they did not
// create), so the port's being taken is what is checked.
#include "vsock/ready_listener.hpp"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "vsock/channel.hpp"

using namespace crosvisor;
using namespace crosvisor::vsock;

namespace {
bool port_taken(std::uint32_t port) {
  return !vsock_listen(port).has_value();
}
}  // namespace

TEST_CASE("a vsock ready port is listened on while anyone waits on it, and closed after") {
  boost::asio::io_context io;
  ReadyListener listener(io);
  constexpr std::uint32_t kPort = 47411;
  REQUIRE_FALSE(port_taken(kPort));
  int called = 0;
  const auto count = [&](Expected<void>) { ++called; };
  listener.expect(1, kPort, 3001, count);
  listener.expect(2, kPort, 3002, count);  // a second VM on the same port shares the listener
  CHECK(port_taken(kPort));
  listener.cancel(1);
  CHECK(port_taken(kPort));  // VM 2 still waits
  listener.cancel(2);
  io.poll();
  CHECK_FALSE(port_taken(kPort));
  CHECK(called == 0);  // cancelled waiters are never called

  listener.expect(3, kPort, 3003, count);
  CHECK(port_taken(kPort));
  listener.close_all();
  io.poll();
  CHECK_FALSE(port_taken(kPort));
  CHECK(called == 0);
}

TEST_CASE("a vsock ready port that cannot be listened on is an error for its waiter at once") {
  boost::asio::io_context io;
  ReadyListener listener(io);
  constexpr std::uint32_t kPort = 47412;
  auto squatter = vsock_listen(kPort);  // someone else holds the port
  REQUIRE(squatter.has_value());
  std::optional<Expected<void>> outcome;
  listener.expect(1, kPort, 3001, [&](Expected<void> result) { outcome = std::move(result); });
  REQUIRE(outcome.has_value());
  CHECK_FALSE(outcome->has_value());
  CHECK_THAT(outcome->error().message, Catch::Contains(std::to_string(kPort)));
}
