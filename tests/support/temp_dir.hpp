// A directory that exists for one test and is removed with everything in it afterwards.
#pragma once

#include <filesystem>
#include <string>

namespace crosvisor::test {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  // Writes `text` to `name` inside the directory and returns its path.
  std::filesystem::path write(const std::string& name, const std::string& text) const;

 private:
  std::filesystem::path path_;
};

// The whole of a file (empty when it cannot be read): a log, a record, a disk image's bytes.
std::string read_file(const std::filesystem::path& path);

}  // namespace crosvisor::test
