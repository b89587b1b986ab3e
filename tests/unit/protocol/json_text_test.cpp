// Replies written and read without a document (protocol/json_text.hpp, protocol/reply_scan.hpp):
// what they produce must be exactly what nlohmann's documents would, whatever the strings hold.
#include "protocol/json_text.hpp"

#include <catch2/catch.hpp>

#include "protocol/framing.hpp"
#include "protocol/replies.hpp"
#include "protocol/reply_scan.hpp"

using namespace crosvisor;
using namespace crosvisor::protocol;
using json = nlohmann::json;

namespace {

// Strings a VM's description can carry: plain, quoted, control characters, UTF-8, and bytes that
// are not UTF-8 (a path is any bytes).
const std::vector<std::string> kAwkward = {
    "",
    "plain",
    "with \"quotes\" and \\backslash\\",
    "tab\there\nnewline\x01\x1f",
    "caf\xc3\xa9 \xe2\x9c\x93",
    "cut \xc3",
    "bad \xff\xfe bytes",
    "del \x7f",
};

VmInfo full_info(const std::string& text) {
  VmInfo info;
  info.name = "vm-" + std::to_string(text.size());
  info.state = VmState::dead;
  info.vmm = VmmKind::crosvm;
  info.debug = DebugLevel::full;
  info.pid = 4242;
  info.cid = 4294967295u;
  info.uptime_ms = -1;
  info.started_at = 1796425915990;
  info.ended_at = 1796425999999;
  info.owner_uid = 65534;
  info.memory_mib = 512;
  info.cpus = 2;
  info.kernel = "/boot/" + text;
  info.disks = {text, "/dev/null (read-only)"};
  info.console_log = "/run/" + text;
  info.gdb_port = 65535;
  info.last_dump = text;
  info.nics = {{"net0", "10.0.0.2", "52:54:00:00:00:01"}, {text, "", ""}};
  info.fleet = text;
  info.reason = DeathReason::killed;
  info.detail = text;
  info.restarts = 3;
  info.ready_on = "console";
  return info;
}

// What nlohmann prints for the document `text` reads as: text in canonical form equals it.
std::string canonical(const std::string& text) {
  return dump(json::parse(text));
}

}  // namespace

TEST_CASE("a VM description written as text is what a document of it prints, and reads back") {
  for (const auto& text : kAwkward) {
    INFO("string: " << json(text).dump(-1, ' ', false, json::error_handler_t::replace));
    const VmInfo info = full_info(text);
    std::string out;
    append_info(out, info);
    CHECK(out == canonical(out));
    const auto back = parse_info(json::parse(out));
    REQUIRE(back.has_value());
    CHECK(back->name == info.name);
    CHECK(back->pid == info.pid);
    CHECK(back->cid == info.cid);
    CHECK(back->uptime_ms == -1);
    CHECK(back->started_at == info.started_at);
    CHECK(back->owner_uid == info.owner_uid);
    CHECK(back->gdb_port == info.gdb_port);
    CHECK(back->nics.size() == 2);
    CHECK(back->reason == DeathReason::killed);
    CHECK(back->restarts == 3);
    CHECK(back->ready_on == "console");
    CHECK(back->disks.size() == 2);
    if (json(text).dump(-1, ' ', false, json::error_handler_t::replace) ==
        json(text).dump(-1, ' ', false, json::error_handler_t::ignore)) {
      CHECK(back->detail == text);  // valid UTF-8 comes back as it was
      CHECK(back->fleet == text);
    }
  }
  // Nothing set: nulls, empty arrays.
  std::string out;
  append_info(out, VmInfo{});
  CHECK(out == canonical(out));
  const auto empty = json::parse(out);
  CHECK(empty["pid"].is_null());
  CHECK(empty["console_log"].is_null());
  CHECK(empty["fleet"].is_null());
  CHECK(empty["reason"].is_null());
  CHECK(empty["ready_on"].is_null());
  CHECK(empty["disks"] == json::array());
  CHECK(empty.size() == 23);
}

TEST_CASE("list and info replies are whole replies, in canonical form") {
  const VmInfo first = full_info("a"), second = full_info("b\"");
  const auto listed = vms_reply(7, {{&first, first.uptime_ms}, {&second, 99}});
  CHECK(listed == canonical(listed));
  const auto reply = json::parse(listed);
  CHECK(reply["id"] == 7);
  CHECK(reply["ok"] == true);
  REQUIRE(reply["vms"].size() == 2);
  CHECK(reply["vms"][1]["detail"] == "b\"");
  CHECK(reply["vms"][0]["uptime_ms"] == first.uptime_ms);
  CHECK(reply["vms"][1]["uptime_ms"] == 99);
  CHECK(json::parse(vms_reply(1, {}))["vms"] == json::array());
  const auto info = info_reply(3, first);
  CHECK(info == canonical(info));
  CHECK(json::parse(info)["vm"]["name"] == first.name);
}

TEST_CASE("JsonText separates values and keys, however they nest") {
  std::string out;
  JsonText text(out);
  text.begin_object()
      .key("a")
      .begin_array()
      .begin_object()
      .end_object()
      .begin_array()
      .end_array()
      .value(std::int64_t{-5})
      .null()
      .value(true)
      .raw("{\"x\":1}")
      .end_array()
      .key("b")
      .value(std::optional<std::uint32_t>())
      .key("c")
      .text_or_null("")
      .key("d")
      .value(std::uint64_t{18446744073709551615u})
      .end_object();
  CHECK(out == R"({"a":[{},[],-5,null,true,{"x":1}],"b":null,"c":null,"d":18446744073709551615})");
}

TEST_CASE("a member printed while the reply is scanned is what dump(2) prints of it") {
  const std::vector<json> members = {
      json::array(),
      json::object(),
      json(nullptr),
      json(-17),
      json(18446744073709551615u),
      json(2.5),
      json(1e300),
      json("caf\xc3\xa9 \"q\" \\ \n\x01"),
      json::parse(R"([{"a":[],"b":{},"c":[1,[2,[3,{}]]],"d":{"e":{"f":null}}},[],{}])"),
  };
  for (const auto& member : members) {
    INFO(member.dump());
    const json reply = {{"id", 9}, {"ok", true}, {"vms", member}, {"zzz", {1, 2}}};
    const auto scanned = scan_reply(reply.dump(), "vms");
    REQUIRE(scanned.has_value());
    REQUIRE(scanned->member.has_value());
    CHECK(*scanned->member == member.dump(2));
    CHECK(scanned->id == 9u);
    CHECK(scanned->ok == true);
    CHECK_FALSE(scanned->event);
  }
  // A real list reply, with every awkward string.
  std::vector<VmInfo> infos;
  for (const auto& text : kAwkward)
    infos.push_back(full_info(text));
  std::vector<ListedInfo> pointers;
  for (const auto& info : infos)
    pointers.push_back({&info, info.uptime_ms});
  const auto listed = vms_reply(1, pointers);
  const auto scanned = scan_reply(listed, "vms");
  REQUIRE(scanned.has_value());
  CHECK(*scanned->member == json::parse(listed)["vms"].dump(2));
}

TEST_CASE("a frame in any form reads as nlohmann's parser reads it, canonical or not") {
  // The scan reads crosvisord's canonical text itself and leaves the rest to nlohmann's parser:
  // the edges of that line, each as the document would have it.
  const std::vector<std::string> members = {"-0",
                                            "0",
                                            "-1",
                                            "01",
                                            "-",
                                            "1.",
                                            "0.5",
                                            "1E2",
                                            "1e-2",
                                            "-9223372036854775808",
                                            "-9223372036854775809",
                                            "18446744073709551615",
                                            "18446744073709551616",
                                            "\"\\u0041\"",
                                            "\"tab\there\"",
                                            "\"\x7f\"",
                                            "\"caf\xc3\xa9\"",
                                            "\"\xff\"",
                                            "tru",
                                            "true",
                                            "nul",
                                            "[ 1 ,\t2\r\n]",
                                            "{\"a\" : {\"b\":[ ]} }",
                                            "[1,]",
                                            "{\"a\"}",
                                            "[}",
                                            "{]"};
  for (const auto& member : members) {
    for (const std::string& frame :
         {R"({"id":5,"vms":)" + member + "}", " \n{ \"vms\" :" + member + " , \"id\" : 5 }\t"}) {
      INFO(frame);
      const auto scanned = scan_reply(frame, "vms");
      const json document = json::parse(frame, nullptr, false);
      if (document.is_discarded()) {
        CHECK_FALSE(scanned.has_value());
        continue;
      }
      REQUIRE(scanned.has_value());
      CHECK(scanned->id == 5u);
      REQUIRE(scanned->member.has_value());
      CHECK(*scanned->member == document["vms"].dump(2));
    }
  }
}

TEST_CASE("scanning a reply finds refusals, events and what is not a reply") {
  const auto refused =
      scan_reply(dump(error_reply(4, Error{ErrorKind::permission, "no, \"you\""})), "vms");
  REQUIRE(refused.has_value());
  CHECK(refused->ok == false);
  CHECK(refused->id == 4u);
  CHECK(refused->error == "no, \"you\"");
  CHECK(refused->kind == "permission");
  CHECK_FALSE(refused->member.has_value());

  const auto event =
      scan_reply(R"({"event":"state","vm":"a","state":"running","detail":""})", "vms");
  REQUIRE(event.has_value());
  CHECK(event->event);
  CHECK_FALSE(event->id.has_value());

  // Nested keys are not the reply's own.
  const auto nested = scan_reply(R"({"vms":{"id":3,"ok":false,"event":1}})", "x");
  REQUIRE(nested.has_value());
  CHECK_FALSE(nested->id.has_value());
  CHECK_FALSE(nested->ok.has_value());
  CHECK_FALSE(nested->event);

  // A member named twice: the last one, as a document keeps.
  const auto twice = scan_reply(R"({"vms":[1],"vms":[2,3]})", "vms");
  REQUIRE(twice.has_value());
  CHECK(*twice->member == json::parse(R"([2,3])").dump(2));

  for (const char* bad : {"", "[]", "3", "\"text\"", "null", "{", R"({"vms":[1,2})", "{} {}",
                          R"({"a":1,})", "not json"}) {
    INFO(bad);
    const auto scanned = scan_reply(bad, "vms");
    REQUIRE_FALSE(scanned.has_value());
    CHECK(scanned.error().kind == ErrorKind::protocol);
  }
}
