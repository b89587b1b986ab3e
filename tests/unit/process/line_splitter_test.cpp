#include "process/line_splitter.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using crosvisor::process::LineSplitter;

TEST_CASE("lines are cut at newlines across chunks, carriage returns dropped") {
  LineSplitter splitter;
  std::vector<std::string> lines;
  auto collect = [&](std::string_view line) { lines.emplace_back(line); };
  splitter.feed("hel", collect);
  splitter.feed("lo\r\nwor", collect);
  splitter.feed("ld\n\nend", collect);
  CHECK(lines == std::vector<std::string>{"hello", "world", ""});
  splitter.flush(collect);
  CHECK(lines.back() == "end");
}

TEST_CASE("an endless line is cut at the limit") {
  LineSplitter splitter(4);
  std::vector<std::string> lines;
  splitter.feed("abcdefghij\n", [&](std::string_view line) { lines.emplace_back(line); });
  CHECK(lines == std::vector<std::string>{"abcd", "efgh", "ij"});
}
