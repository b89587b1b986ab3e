// vsock channels: hybrid vsock against a peer that speaks the Firecracker protocol over real Unix
// sockets, in both directions; AF_VSOCK argument checks (no connection is ever attempted: the
// host here has no vsock transport, and tests never touch a CID they did not create).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <future>
#include <thread>

#include "support/temp_dir.hpp"
#include "vsock/channel.hpp"
#include "vsock/ready_router.hpp"

using namespace crosvisor;
using namespace crosvisor::vsock;
using namespace std::chrono_literals;

namespace {

enum class Answer { ok, refuse, garbage, silent };

// A VMM's hybrid vsock socket: accepts one host connection, reads "CONNECT <port>\n" and answers.
class FirecrackerPeer {
 public:
  FirecrackerPeer(const std::filesystem::path& path, Answer answer)
      : listener_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, path.c_str());
    REQUIRE(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    REQUIRE(::listen(listener_.get(), 4) == 0);
    thread_ = std::thread([this, answer] { serve(answer); });
  }
  ~FirecrackerPeer() {
    release_.set_value();
    thread_.join();
  }
  std::string request() { return request_.get_future().get(); }

 private:
  void serve(Answer answer) {
    auto connection = accept_within(listener_.get(), 10s);
    if (!connection)
      return;
    std::string line;
    char c;
    while (::read(connection->get(), &c, 1) == 1 && c != '\n')
      line.push_back(c);
    request_.set_value(line);
    switch (answer) {
      case Answer::ok: {
        const std::string ok = "OK 1073741824\n";
        [[maybe_unused]] auto n = ::write(connection->get(), ok.data(), ok.size());
        char buffer[64];
        const ssize_t got = ::read(connection->get(), buffer, sizeof(buffer));  // echo once
        if (got > 0)
          n = ::write(connection->get(), buffer, static_cast<std::size_t>(got));
        break;
      }
      case Answer::refuse:
        connection->reset();
        break;
      case Answer::garbage: {
        const std::string junk = "HELLO THERE\n";
        [[maybe_unused]] auto n = ::write(connection->get(), junk.data(), junk.size());
        break;
      }
      case Answer::silent:
        break;
    }
    release_.get_future().wait();
  }

  UniqueFd listener_;
  std::promise<std::string> request_;
  std::promise<void> release_;
  std::thread thread_;
};

}  // namespace

TEST_CASE("hybrid vsock: CONNECT, OK, then the socket is the stream") {
  test::TempDir dir;
  const auto vmm_socket = dir / "vmm.vsock";
  FirecrackerPeer peer(vmm_socket, Answer::ok);
  auto stream = hybrid_connect(vmm_socket, 52, 5s);
  REQUIRE(stream.has_value());
  CHECK(peer.request() == "CONNECT 52");
  const std::string ping = "ping";
  REQUIRE(::write(stream->get(), ping.data(), ping.size()) == 4);
  char echo[4];
  REQUIRE(::read(stream->get(), echo, sizeof(echo)) == 4);
  CHECK(std::string(echo, 4) == "ping");
}

TEST_CASE("hybrid vsock: a refused port, a malformed answer, silence and no socket are errors") {
  test::TempDir dir;
  {
    FirecrackerPeer peer(dir / "refuse.vsock", Answer::refuse);
    auto refused = hybrid_connect(dir / "refuse.vsock", 1234, 5s);
    REQUIRE_FALSE(refused.has_value());
    CHECK_THAT(refused.error().message,
               Catch::EndsWith("port 1234: refused (the VMM closed the connection)"));
  }
  {
    FirecrackerPeer peer(dir / "junk.vsock", Answer::garbage);
    auto junk = hybrid_connect(dir / "junk.vsock", 7, 5s);
    REQUIRE_FALSE(junk.has_value());
    CHECK_THAT(junk.error().message, Catch::EndsWith("port 7: unexpected answer \"HELLO THERE\""));
  }
  {
    FirecrackerPeer peer(dir / "mute.vsock", Answer::silent);
    auto silent = hybrid_connect(dir / "mute.vsock", 9, 200ms);
    REQUIRE_FALSE(silent.has_value());
    CHECK_THAT(silent.error().message, Catch::EndsWith("port 9: no answer within 200 ms"));
  }
  auto absent = hybrid_connect(dir / "nobody", 9, 200ms);
  REQUIRE_FALSE(absent.has_value());
  CHECK_THAT(absent.error().message, Catch::Contains("connect: No such file or directory"));
}

TEST_CASE("hybrid vsock: a guest connecting to host port P arrives on <uds>_<P>") {
  test::TempDir dir;
  const auto uds = dir / "vm.vsock";
  auto listener = hybrid_listen(uds, 9999);
  REQUIRE(listener.has_value());
  CHECK(std::filesystem::is_socket(dir / "vm.vsock_9999"));
  // The VMM, on the guest's behalf, connects to that path and forwards the guest's bytes.
  std::thread vmm([&] {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, hybrid_listen_path(uds, 9999).c_str());
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    const std::string hello = "guest says ready";
    REQUIRE(::write(fd.get(), hello.data(), hello.size()) == static_cast<ssize_t>(hello.size()));
  });
  auto connection = accept_within(listener->get(), 5s);
  vmm.join();
  REQUIRE(connection.has_value());
  char buffer[32] = {};
  CHECK(::read(connection->get(), buffer, sizeof(buffer)) == 16);
  CHECK(std::string(buffer) == "guest says ready");
  auto nobody = accept_within(listener->get(), 50ms);
  CHECK_THAT(nobody.error().message, Catch::Equals("no connection within 50 ms"));
}

TEST_CASE("AF_VSOCK never connects to the reserved CIDs") {
  for (std::uint32_t cid : {0u, 1u, 2u}) {
    auto refused = vsock_connect(cid, 1024, 100ms);
    REQUIRE_FALSE(refused.has_value());
    CHECK_THAT(refused.error().message, Catch::EndsWith("CIDs 0, 1 and 2 are not guests"));
  }
}

TEST_CASE("vsock readiness: a connection readies the VM whose CID it comes from, once") {
  ReadyRouter router;
  router.expect(5000, 2048, 1);
  router.expect(5000, 2049, 2);
  router.expect(6000, 2048, 3);
  CHECK(router.listening_needed(5000));
  CHECK_FALSE(router.listening_needed(7000));
  CHECK(router.arrived(5000, 9999) == std::nullopt);  // a CID nobody waits for
  CHECK(router.arrived(5000, 2049) == 2u);
  CHECK(router.arrived(5000, 2049) == std::nullopt);  // only once
  CHECK(router.arrived(6000, 2049) == std::nullopt);  // right CID, wrong port
  router.forget(1);
  CHECK(router.arrived(5000, 2048) == std::nullopt);
  CHECK_FALSE(router.listening_needed(5000));
  CHECK(router.arrived(6000, 2048) == 3u);
}
