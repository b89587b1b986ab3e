#include "support/etcd_process.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>

#include "core/unique_fd.hpp"

namespace crosvisor::test {
namespace {

using namespace std::chrono_literals;

// A loopback port nobody listens on now (bound and let go: the member binds it a moment later).
int free_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  socklen_t size = sizeof(address);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &size);
  return ntohs(address.sin_port);
}

void run(const std::string& command) {
  INFO(command);
  REQUIRE(std::system((command + " >/dev/null 2>&1").c_str()) == 0);
}

// A key and a certificate signed by `ca` (for 127.0.0.1 when `server`).
void issue(const std::filesystem::path& dir, const std::string& name, const std::string& ca,
           bool server) {
  const auto d = dir.string() + "/";
  run("openssl req -new -newkey rsa:2048 -nodes -keyout " + d + name + ".key -subj /CN=" + name +
      " -out " + d + name + ".csr");
  std::string extensions = d + name + ".ext";
  std::FILE* ext = std::fopen(extensions.c_str(), "w");
  REQUIRE(ext != nullptr);
  // A member's certificate serves clients and is also the client certificate its own JSON
  // gateway presents to it (etcd 3.4): both usages.
  std::fputs(server ? "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
                    : "extendedKeyUsage=clientAuth\n",
             ext);
  std::fclose(ext);
  run("openssl x509 -req -in " + d + name + ".csr -CA " + d + ca + ".crt -CAkey " + d + ca +
      ".key -CAcreateserial -days 2 -extfile " + extensions + " -out " + d + name + ".crt");
}

}  // namespace

TestCertificates make_test_certificates(const std::filesystem::path& dir) {
  const auto d = dir.string() + "/";
  for (const std::string ca : {"ca", "other-ca"})
    run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + ca + " -keyout " + d + ca +
        ".key -out " + d + ca + ".crt");
  issue(dir, "server", "ca", true);
  issue(dir, "client", "ca", false);
  issue(dir, "stranger", "other-ca", false);
  return {dir / "ca.crt",     dir / "server.crt",   dir / "server.key",  dir / "client.crt",
          dir / "client.key", dir / "stranger.crt", dir / "stranger.key"};
}

bool etcd_installed() {
  return ::access("/usr/bin/etcd", X_OK) == 0;
}

EtcdProcess::EtcdProcess(std::optional<TestCertificates> tls) {
  REQUIRE(etcd_installed());
  const int client = free_port();
  const int peer = free_port();
  const std::string scheme = tls ? "https" : "http";
  endpoint_ = scheme + "://127.0.0.1:" + std::to_string(client);
  const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
  std::vector<std::string> argv = {"/usr/bin/etcd",
                                   "--name=m",
                                   "--data-dir=" + (dir_ / "data").string(),
                                   "--listen-client-urls=" + endpoint_,
                                   "--advertise-client-urls=" + endpoint_,
                                   "--listen-peer-urls=" + peer_url,
                                   "--initial-advertise-peer-urls=" + peer_url,
                                   "--initial-cluster=m=" + peer_url,
                                   "--pre-vote=true"};
  if (tls) {
    argv.push_back("--client-cert-auth");
    argv.push_back("--trusted-ca-file=" + tls->ca.string());
    argv.push_back("--cert-file=" + tls->server_cert.string());
    argv.push_back("--key-file=" + tls->server_key.string());
  }
  process_ = std::make_unique<Subprocess>(argv);
  REQUIRE(process_->wait_for_line("ready to serve client requests", 20s));
}

void EtcdProcess::kill() {
  process_->signal(SIGKILL);
  process_->wait_exit(10s);
}

}  // namespace crosvisor::test
