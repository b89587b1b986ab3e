// GPT and composite disks, checked against crosvm's own test vectors and with real tools
// (protoc, sgdisk, qemu-img).
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "disk/composite.hpp"
#include "disk/composite_files.hpp"
#include "disk/qcow2.hpp"
#include "support/processes.hpp"
#include "support/temp_dir.hpp"

using namespace crosvisor;
using namespace crosvisor::disk;

namespace {

const Guid kDiskGuid = *Guid::parse("12345678-1234-5678-ABCD-12345678ABCD");
const Guid kPartitionGuid = *Guid::parse("AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE");

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

// A file of `size` bytes filled with `fill`, for partition images.
std::filesystem::path make_image(const test::TempDir& dir, const std::string& name,
                                 std::size_t size, char fill) {
  return dir.write(name, std::string(size, fill));
}

CompositeLayout crosvm_vector() {
  auto layout = plan_composite({{"partition1", 4000, false, std::nullopt, kLinuxFilesystemType},
                                {"partition2", 4096, true, kPartitionGuid, kLinuxFilesystemType}},
                               kDiskGuid);
  REQUIRE(layout.has_value());
  return *layout;
}

}  // namespace

TEST_CASE("CRC-32 and GUIDs match their specifications") {
  const std::string check = "123456789";
  CHECK(crc32({reinterpret_cast<const std::uint8_t*>(check.data()), check.size()}) == 0xCBF43926u);
  const auto mixed = kLinuxFilesystemType.mixed_endian();
  CHECK(hex({reinterpret_cast<const char*>(mixed.data()), mixed.size()}) ==
        "af3dc60f83847247"
        "8e793d69d8477de4");
  CHECK(kLinuxFilesystemType.to_string() == "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
  CHECK(Guid::from_mixed_endian(mixed.data()) == kLinuxFilesystemType);
  CHECK_FALSE(Guid::parse("not-a-guid").has_value());
  const Guid random = Guid::random();
  CHECK(random != Guid::random());
  CHECK(random.to_string()[14] == '4');  // version 4
}

TEST_CASE(
    "crosvm's test vector: components at 0, 0x5000, 0x5fa0, 0x6000 (RW), 0x7000, length 0xc000") {
  const auto layout = crosvm_vector();
  REQUIRE(layout.components.size() == 5);
  const std::vector<std::pair<ComponentKind, std::uint64_t>> expected{
      {ComponentKind::header, 0x0},
      {ComponentKind::partition, 0x5000},
      {ComponentKind::filler, 0x5fa0},
      {ComponentKind::partition, 0x6000},
      {ComponentKind::footer, 0x7000}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CHECK(layout.components[i].kind == expected[i].first);
    CHECK(layout.components[i].offset == expected[i].second);
    CHECK(layout.components[i].writable == (i == 3));
  }
  CHECK(layout.length == 0xc000);
  CHECK(layout.gpt.header.size() == 0x5000);
  CHECK(layout.gpt.footer.size() == 0x5000);
}

TEST_CASE("primary and backup GPT headers point at each other and otherwise agree") {
  const auto layout = crosvm_vector();
  std::string disk(layout.gpt.header.begin(), layout.gpt.header.end());
  disk.resize(0x7000, '\0');
  disk.append(layout.gpt.footer.begin(), layout.gpt.footer.end());
  REQUIRE(disk.size() == layout.length);
  std::string primary = disk.substr(512, 92);
  std::string backup = disk.substr(disk.size() - 512, 92);
  const auto lba = [](const std::string& header, std::size_t at) {
    return load_le<std::uint64_t>(
        {reinterpret_cast<const std::uint8_t*>(header.data()), header.size()}, at);
  };
  const std::uint64_t last_lba = layout.length / 512 - 1;
  CHECK(lba(primary, 24) == 1);
  CHECK(lba(primary, 32) == last_lba);
  CHECK(lba(backup, 24) == last_lba);
  CHECK(lba(backup, 32) == 1);
  CHECK(lba(primary, 72) == 2);
  CHECK(lba(backup, 72) == (0x7000 + kFooterPadding) / 512);  // the backup entries (UEFI spec)
  for (auto* header : {&primary, &backup}) {
    std::fill(header->begin() + 16, header->begin() + 20, '\0');  // CRC
    std::fill(header->begin() + 24, header->begin() + 40, '\0');  // current/backup LBA
    std::fill(header->begin() + 72, header->begin() + 80, '\0');  // entries LBA
  }
  CHECK(primary == backup);
  // The entries of the footer are a copy of the primary ones.
  CHECK(disk.substr(1024, kGptEntriesSize) ==
        disk.substr(0x7000 + kFooterPadding, kGptEntriesSize));
}

TEST_CASE("the composite file is byte-exact against the protoc-encoded reference vector") {
  auto layout = plan_composite({{"p1", 10240, false, std::nullopt, kLinuxFilesystemType},
                                {"p2", 16384, true, std::nullopt, kLinuxFilesystemType}},
                               kDiskGuid);
  REQUIRE(layout.has_value());
  const auto name = [](const Component& c) -> std::string {
    switch (c.kind) {
      case ComponentKind::header:
        return "header.img";
      case ComponentKind::footer:
        return "footer.img";
      case ComponentKind::filler:
        return "filler.img";
      case ComponentKind::partition:
        break;
    }
    return c.partition == 0 ? "p1.img" : "p2.img";
  };
  const std::string file = encode_composite(*layout, name);
  CHECK(file.size() == 101);
  CHECK(hex(file) ==
        "636f6d706f736974655f6469736b1d0802"
        "120c0a0a6865616465722e696d67"
        "120c0a0670312e696d671080a001"
        "12100a0a66696c6c65722e696d671080f001"
        "120e0a0670322e696d67108080021801"
        "12100a0a666f6f7465722e696d6710808003"
        "1880a004");
}

TEST_CASE("protoc --decode reads the composite file back to the expected fields") {
  test::TempDir dir;
  const auto layout = crosvm_vector();
  const std::string file = encode_composite(layout, [](const Component& c) {
    return "/proc/self/fd/" + std::to_string(10 + c.offset / 0x1000);
  });
  const auto body = dir.write("body.pb", file.substr(kCompositeMagic.size()));
  const auto result = test::run_command(
      "protoc --decode=crosvisor.cdisk_spec.CompositeDisk -I " + std::string(CROSVISOR_SOURCE_DIR) +
      " " + CROSVISOR_SOURCE_DIR + "/disk/cdisk_spec.proto < " + body.string());
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  CHECK(result.output ==
        "version: 2\n"
        "component_disks {\n  file_path: \"/proc/self/fd/10\"\n}\n"
        "component_disks {\n  file_path: \"/proc/self/fd/15\"\n  offset: 20480\n}\n"
        "component_disks {\n  file_path: \"/proc/self/fd/15\"\n  offset: 24480\n}\n"
        "component_disks {\n  file_path: \"/proc/self/fd/16\"\n  offset: 24576\n  "
        "read_write_capability: READ_WRITE\n}\n"
        "component_disks {\n  file_path: \"/proc/self/fd/17\"\n  offset: 28672\n}\n"
        "length: 49152\n");
}

TEST_CASE("a component's file_offset, which crosvm reads from, is decoded and shown") {
  test::TempDir dir;
  // Written by another tool (protoc here): crosvisor itself always writes 0.
  const auto text = dir.write("foreign.txt",
                              "version: 2\n"
                              "component_disks { file_path: \"/srv/part.img\" offset: 0 "
                              "file_offset: 4096 }\n"
                              "length: 8192\n");
  const auto body = dir / "foreign.pb";
  const auto encoded =
      test::run_command("protoc --encode=crosvisor.cdisk_spec.CompositeDisk -I " +
                        std::string(CROSVISOR_SOURCE_DIR) + " " + CROSVISOR_SOURCE_DIR +
                        "/disk/cdisk_spec.proto < " + text.string() + " > " + body.string());
  REQUIRE(encoded.exit_code == 0);
  std::ifstream in(body, std::ios::binary);
  const std::string protobuf((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  auto file = decode_composite(std::string(kCompositeMagic) + protobuf);
  REQUIRE(file.has_value());
  REQUIRE(file->components.size() == 1);
  CHECK(file->components[0].file_offset == 4096);
  const auto composite = dir.write("foreign.img", std::string(kCompositeMagic) + protobuf);
  auto report = inspect_composite(composite);
  REQUIRE(report.has_value());  // the GPT part fails (no such file): the components still show
  CHECK_THAT(*report, Catch::Contains("/srv/part.img (from byte 4096 of the file)"));
}

TEST_CASE("bad partition lists are refused with a message naming the problem") {
  const auto plan = [](std::vector<PartitionInput> inputs) {
    return plan_composite(inputs, kDiskGuid);
  };
  CHECK(plan({{"same", 4096, false, {}, kLinuxFilesystemType},
              {"same", 4096, false, {}, kLinuxFilesystemType}})
            .error()
            .message == "duplicate partition label \"same\"");
  CHECK_THAT(plan({{std::string(37, 'x'), 4096, false, {}, kLinuxFilesystemType}}).error().message,
             Catch::Contains("is 37 UTF-16 code units long; GPT allows at most 36"));
  CHECK(plan({{std::string(36, 'x'), 4096, false, {}, kLinuxFilesystemType}}).has_value());
  std::vector<PartitionInput> many;
  for (int i = 0; i < 129; ++i)
    many.push_back({"p" + std::to_string(i), 4096, false, {}, kLinuxFilesystemType});
  CHECK(plan(many).error().message == "129 partitions: a GPT holds at most 128");
  many.pop_back();
  CHECK(plan(many).has_value());
  CHECK_THAT(plan({{"rw", 4000, true, {}, kLinuxFilesystemType}}).error().message,
             Catch::StartsWith("writable partition \"rw\" is 4000 bytes, not a multiple of 4096"));
  CHECK(plan({{"empty", 0, false, {}, kLinuxFilesystemType}}).error().message ==
        "partition \"empty\" is empty");
  CHECK_THAT(plan({{"", 4096, false, {}, kLinuxFilesystemType}}).error().message,
             Catch::Contains("must not be empty"));
}

TEST_CASE("the reader validates composite files as crosvm does") {
  const auto layout = crosvm_vector();
  const std::string good =
      encode_composite(layout, [](const Component&) { return std::string("x"); });
  auto decoded = decode_composite(good);
  REQUIRE(decoded.has_value());
  CHECK(decoded->version == 2);
  CHECK(decoded->length == 0xc000);
  REQUIRE(decoded->components.size() == 5);
  CHECK(decoded->components[2].length == 0x60);
  CHECK(decoded->components[3].writable);

  CHECK(decode_composite("composite_disk\x1e" + good.substr(15)).error().message ==
        "not a composite disk: bad magic");
  CHECK(decode_composite(std::string(kCompositeMagic) + "\xff\xff\xff").error().message ==
        "composite disk: the CompositeDisk protobuf is malformed");
  // version 3: field 1 varint 3
  CHECK(decode_composite(std::string(kCompositeMagic) + "\x08\x03" + good.substr(17))
            .error()
            .message == "composite disk: unknown version 3");
  // two components at offset 0x5000: duplicate one component
  auto same =
      decode_composite(std::string(kCompositeMagic) +
                       "\x08\x02\x12\x05\x0a\x01x\x10\x01\x12\x05\x0a\x01y\x10\x01\x18\x10");
  CHECK(same.error().message == "composite disk: two components at offset 1");
  CHECK(decode_composite(std::string(kCompositeMagic) + "\x08\x02\x12\x05\x0a\x01x\x10\x10\x18\x10")
            .error()
            .message == "composite disk: length 16 does not exceed the last offset 16");
  CHECK(decode_composite(std::string(kCompositeMagic) + "\x08\x02").error().message ==
        "composite disk: no components");
}

TEST_CASE(
    "vm composite files: sgdisk verifies the GPT and qemu-img reads the VMDK as the same bytes") {
  test::TempDir dir;
  const auto boot = make_image(dir, "boot.img", 4000, 'b');      // read-only, unaligned
  const auto data = make_image(dir, "data.img", 3 * 4096, 'd');  // writable
  const auto conf = make_image(dir, "conf.img", 10 * 512, 'c');  // read-only, sector-aligned
  auto outputs = create_composite_files(
      dir / "disk.img",
      {{"boot", boot, false, {}}, {"data", data, true, {}}, {"config", conf, false, {}}});
  REQUIRE(outputs.has_value());

  // The disk as crosvm assembles it: each component up to the next offset, zeros past a file's end.
  const std::string composite = read_all(outputs->composite);
  auto file = decode_composite(composite);
  REQUIRE(file.has_value());
  std::string disk;
  for (const auto& part : file->components) {
    std::string bytes = read_all(part.path);
    bytes.resize(part.length, '\0');
    disk += bytes;
  }
  REQUIRE(disk.size() == file->length);
  const auto raw = dir.write("concatenated.raw", disk);

  auto verify = test::run_command("sgdisk -v " + raw.string());
  INFO(verify.output);
  CHECK(verify.exit_code == 0);
  CHECK_THAT(verify.output, Catch::Contains("No problems found"));
  auto print = test::run_command("sgdisk -p " + raw.string());
  INFO(print.output);
  CHECK_THAT(print.output,
             Catch::Contains("   1              40              47   4.0 KiB     8300  boot"));
  CHECK_THAT(print.output,
             Catch::Contains("   2              48              71   12.0 KiB    8300  data"));
  CHECK_THAT(print.output,
             Catch::Contains("   3              72              87   8.0 KiB     8300  config"));

  const auto converted = dir / "converted.raw";
  auto convert = test::run_command("qemu-img convert -f vmdk -O raw " + outputs->vmdk.string() +
                                   " " + converted.string());
  INFO(convert.output);
  REQUIRE(convert.exit_code == 0);
  CHECK(read_all(converted) == disk);

  auto inspect = inspect_composite(outputs->composite);
  REQUIRE(inspect.has_value());
  CHECK_THAT(*inspect, Catch::Contains("1: \"boot\" LBA 40-47 (4096 bytes)"));
  CHECK_THAT(*inspect, Catch::Contains("backup GPT: valid"));

  // Writing through the VMDK, as QEMU would for a guest: the read-only parts (the GPT header,
  // boot, config, the footer) keep their bytes; the writable partition takes the write.
  const std::string before_header = read_all(outputs->header);
  const std::string before_footer = read_all(outputs->footer);
  const std::string before_boot = read_all(boot);
  const std::string before_conf = read_all(conf);
  const auto at = [](std::uint64_t lba) { return std::to_string(lba * 512); };
  const std::string footer_offset = std::to_string(file->length - 4096);
  auto write = test::run_command("qemu-io -f vmdk -c 'write -P 0x5a 0 512' -c 'write -P 0x5a " +
                                 at(40) + " 512' -c " + "'write -P 0x5a " + at(48) +
                                 " 512' -c 'write -P 0x5a " + at(72) + " 1024' -c " +
                                 "'write -P 0x5a " + footer_offset + " 512' -c 'read -P 0x5a " +
                                 at(40) + " 512' " + outputs->vmdk.string() + " 2>&1");
  INFO(write.output);
  REQUIRE(write.exit_code == 0);
  CHECK_THAT(write.output, !Catch::Contains("failed") && !Catch::Contains("Pattern verification"));
  CHECK(read_all(outputs->header) == before_header);
  CHECK(read_all(outputs->footer) == before_footer);
  CHECK(read_all(boot) == before_boot);
  CHECK(read_all(conf) == before_conf);
  CHECK(read_all(data).substr(0, 512) == std::string(512, 'Z'));
  CHECK(read_all(data).substr(512) == std::string(3 * 4096 - 512, 'd'));
}

TEST_CASE("bad partition files are refused and nothing is written") {
  test::TempDir dir;
  const auto good = make_image(dir, "good.img", 4096, 'g');
  const auto attempt = [&](const std::filesystem::path& bad) {
    auto result = create_composite_files(dir / "out.img",
                                         {{"good", good, false, {}}, {"bad", bad, false, {}}});
    REQUIRE_FALSE(result.has_value());
    for (const auto& name : {"out.img", "out.img.header", "out.img.footer", "out.img.filler",
                             "out.img.vmdk", "out.img.base.vmdk", "out.img.ro1.vmdk"}) {
      CHECK_FALSE(std::filesystem::exists(dir / name));
    }
    return result.error().message;
  };
  CHECK_THAT(attempt(dir / "missing.img"),
             Catch::Contains("missing.img: No such file or directory"));
  CHECK_THAT(attempt(dir.write("empty.img", "")), Catch::EndsWith("empty.img is empty"));
  std::filesystem::create_directory(dir / "folder");
  CHECK_THAT(attempt(dir / "folder"), Catch::EndsWith("is a directory, not a regular file"));
  REQUIRE(mkfifo((dir / "fifo").c_str(), 0600) == 0);
  CHECK_THAT(attempt(dir / "fifo"), Catch::EndsWith("is a FIFO, not a regular file"));
  CHECK_THAT(attempt("/dev/null"), Catch::EndsWith("is a character device, not a regular file"));
}

TEST_CASE("partition arguments read as LABEL:PATH[:writable][:GUID]") {
  auto plain = parse_partition_argument("boot:/x/boot.img");
  REQUIRE(plain.has_value());
  CHECK(plain->label == "boot");
  CHECK(plain->path == "/x/boot.img");
  CHECK_FALSE(plain->writable);
  auto full = parse_partition_argument("data:d.img:writable:AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE");
  REQUIRE(full.has_value());
  CHECK(full->writable);
  CHECK(full->guid == kPartitionGuid);
  CHECK_FALSE(parse_partition_argument("nolabel").has_value());
  CHECK_THAT(
      parse_partition_argument("a:b:rw").error().message,
      Catch::Contains("\"rw\" is not \"writable\", a partition type (esp, linux) nor a GUID"));
}

TEST_CASE("the empty qcow2 overlay passes qemu-img check and has the right size") {
  test::TempDir dir;
  for (std::uint64_t size : {std::uint64_t{4096}, std::uint64_t{5} << 30, std::uint64_t{3} << 40}) {
    const Bytes image = empty_qcow2(size);
    const auto path = dir.write("overlay.qcow2", std::string(image.begin(), image.end()));
    auto check = test::run_command("qemu-img check -f qcow2 " + path.string());
    INFO(check.output);
    CHECK(check.exit_code == 0);
    auto info = test::run_command("qemu-img info --output=json -f qcow2 " + path.string());
    CHECK_THAT(info.output, Catch::Contains("\"virtual-size\": " + std::to_string(size)));
    CHECK(image.size() <= 4 * 65536 + 65536);
  }
}
