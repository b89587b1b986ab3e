// A real etcd (Debian's etcd-server 3.4) of the test's own: one member on loopback, on ports
// nobody else uses, its data in a temporary directory, with --pre-vote as crosvisor's docs ask;
// optionally serving clients over mutual TLS. Killed when it goes out of scope.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

namespace crosvisor::test {

// A test CA with a server certificate for 127.0.0.1 and a client certificate (openssl's CLI).
struct TestCertificates {
  std::filesystem::path ca, server_cert, server_key, client_cert, client_key;
  // Another CA's client certificate: what a stranger would present.
  std::filesystem::path stranger_cert, stranger_key;
};
TestCertificates make_test_certificates(const std::filesystem::path& dir);

class EtcdProcess {
 public:
  // Skips nothing: a missing etcd fails the test (scripts/setup installs it).
  explicit EtcdProcess(std::optional<TestCertificates> tls = std::nullopt);
  std::string endpoint() const { return endpoint_; }  // "http://127.0.0.1:PORT" (or https)
  pid_t pid() const { return process_->pid(); }
  void kill();  // SIGKILL, and wait

 private:
  TempDir dir_;
  std::string endpoint_;
  std::unique_ptr<Subprocess> process_;
};

// Whether Debian's etcd is installed (tests that need it say so when it is not).
bool etcd_installed();

}  // namespace crosvisor::test
