// What /proc says a process used: the parsers on texts as the kernel writes them, then this
// process's own figures.
#include "process/proc_usage.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>

using namespace crosvisor;

TEST_CASE("proc usage: stat's CPU times past a command with spaces and parentheses, kB, io") {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
  const std::string stat =
      "4242 (qemu (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 "
      "20 0 3 0 12345 1000000 2000 18446744073709551615\n";
  CHECK(process::cpu_usec_from_stat(stat, 100) == 3'000'000u);  // (250 + 50) ticks at 100 Hz
  CHECK_FALSE(process::cpu_usec_from_stat("4242 (short) S 1 2", 100));
  CHECK_FALSE(process::cpu_usec_from_stat("no parenthesis", 100));
  const std::string status = "Name:\tqemu\nVmPeak:\t  100 kB\nVmRSS:\t    2048 kB\nThreads:\t7\n";
  CHECK(process::status_number(status, "VmRSS") == 2048u * 1024);
  CHECK(process::status_number(status, "Threads") == 7u);
  CHECK_FALSE(process::status_number(status, "VmSwap"));
  CHECK_FALSE(process::status_number(status, "Vm"));  // a prefix is not a key
  const std::string io =
      "rchar: 100\nwchar: 200\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\n"
      "write_bytes: 8192\ncancelled_write_bytes: 0\n";
  CHECK(process::io_number(io, "read_bytes") == 4096u);
  CHECK(process::io_number(io, "write_bytes") == 8192u);
}

TEST_CASE("proc usage of this process: CPU time, resident memory and threads") {
  const auto own = process::usage_of(::getpid());
  CHECK(own.cpu_usec.has_value());
  REQUIRE(own.rss_bytes.has_value());
  CHECK(*own.rss_bytes > 1024u * 1024);
  CHECK(own.threads >= 1u);
  CHECK(own.read_bytes.has_value());
  const auto gone = process::usage_of(0x3fffffff);  // no such process: nothing, no error
  CHECK_FALSE(gone.cpu_usec);
  CHECK_FALSE(gone.rss_bytes);
}
