#include "safetensors/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <tuple>

#include "support/test_support.h"
#include "util/error.h"

namespace tune::safetensors {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr char kFileName[] = "model.safetensors";

// A safetensors file assembled byte by byte: the 8-byte little-endian length of `header` (or
// `declared_length`, to build files that lie about it), `header` itself, then `data`.
std::string FileBytes(std::string_view header, std::string_view data = {},
                      std::optional<uint64_t> declared_length = std::nullopt) {
  const uint64_t length = declared_length.value_or(header.size());
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes += static_cast<char>((length >> (8 * i)) & 0xFF);
  bytes += header;
  bytes += data;
  return bytes;
}

// One header entry: {"dtype":...,"shape":...,"data_offsets":...}, each given as raw JSON text.
std::string Entry(std::string_view dtype, std::string_view shape, std::string_view offsets) {
  return R"({"dtype":)" + std::string(dtype) + R"(,"shape":)" + std::string(shape) +
         R"(,"data_offsets":)" + std::string(offsets) + "}";
}

std::span<const std::byte> AsBytes(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

// The one-line message ParseHeader refuses `file` with; fails the test if it accepts the file or
// the message does not start with the file name.
std::string RefusalOf(const std::string& file) {
  try {
    ParseHeader(AsBytes(file), kFileName);
  } catch (const UserError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(std::string(kFileName) + ": ", 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    return message;
  }
  ADD_FAILURE() << "ParseHeader accepted a bad file";
  return "";
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::span<const std::byte> AsBytes(const std::vector<uint8_t>& bytes) {
  return std::as_bytes(std::span(bytes));
}

// --- Refusals: each hostile file gets its own message, naming the file and the problem.

TEST(SafetensorsReader, RefusesAFileShorterThanTheLengthField) {
  const std::string message = RefusalOf(std::string("\x10\0\0\0\0", 5));
  EXPECT_TRUE(Contains(message, "is 5 bytes long, too short for the 8-byte header length"));
  EXPECT_TRUE(Contains(message, "not a safetensors file"));
}

TEST(SafetensorsReader, RefusesHeaderLengthPastEndOfFile) {
  const std::string message = RefusalOf(FileBytes("{}", "", 100));
  EXPECT_TRUE(Contains(message,
                       "header length 100 bytes runs past the end of the file (2 bytes "
                       "follow the length field)"));
}

TEST(SafetensorsReader, RefusesHeaderLengthOverTheLimitWithoutAllocatingIt) {
  EXPECT_TRUE(Contains(RefusalOf(FileBytes("{}", "", 200'000'000)),
                       "header length 200000000 bytes is over the 100000000-byte limit"));
  EXPECT_TRUE(Contains(RefusalOf(FileBytes("{}", "", UINT64_MAX)),
                       "header length 18446744073709551615 bytes is over the"));
}

TEST(SafetensorsReader, RefusesAHeaderThatIsNotJson) {
  const std::string message = RefusalOf(FileBytes("{\"w\": nope}"));
  EXPECT_TRUE(Contains(message, "header is not valid JSON (parse error at line 1"));
  EXPECT_TRUE(Contains(RefusalOf(FileBytes("")), "header is not valid JSON"));
  // Invalid UTF-8 inside a string: the format says UTF-8.
  EXPECT_TRUE(Contains(RefusalOf(FileBytes("{\"\xff\":1}")), "header is not valid JSON"));
}

TEST(SafetensorsReader, RefusesAHeaderThatIsNotAnObject) {
  EXPECT_TRUE(Contains(RefusalOf(FileBytes("[1, 2]")), "header is a JSON array, not an object"));
  EXPECT_TRUE(Contains(RefusalOf(FileBytes("\"text\"")), "header is a JSON string, not an object"));
}

TEST(SafetensorsReader, RefusesDeeplyNestedJsonEarly) {
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  EXPECT_TRUE(Contains(RefusalOf(FileBytes(deep)),
                       "header nests JSON deeper than a safetensors header does"));
  const std::string in_shape = "{\"w\":" + Entry("\"F32\"", "[[[1]]]", "[0,4]") + "}";
  EXPECT_TRUE(Contains(RefusalOf(FileBytes(in_shape, "abcd")), "nests JSON deeper"));
}

TEST(SafetensorsReader, RefusesDuplicateTensorNames) {
  // nlohmann::json alone would keep the second entry and hide the first.
  const std::string header = "{\"w\":" + Entry("\"U8\"", "[2]", "[0,2]") +
                             ",\"w\":" + Entry("\"U8\"", "[2]", "[2,4]") + "}";
  EXPECT_TRUE(Contains(RefusalOf(FileBytes(header, "abcd")),
                       "tensor 'w' appears twice in the header; the file is corrupt"));
}

TEST(SafetensorsReader, RefusesADuplicateKeyInsideAnEntryOrTheMetadata) {
  const std::string entry = R"({"w":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}})";
  EXPECT_TRUE(Contains(RefusalOf(FileBytes(entry, "a")), "tensor 'w' has key 'dtype' twice"));
  const std::string metadata = R"({"__metadata__":{"a":"1","a":"2"}})";
  EXPECT_TRUE(Contains(RefusalOf(FileBytes(metadata)), "__metadata__ has key 'a' twice"));
  const std::string two = R"({"__metadata__":{},"__metadata__":{}})";
  EXPECT_TRUE(Contains(RefusalOf(FileBytes(two)), "header has two __metadata__ entries"));
}

TEST(SafetensorsReader, RefusesAnEntryThatIsNotAnObject) {
  EXPECT_TRUE(Contains(RefusalOf(FileBytes(R"({"w":[1,2]})")),
                       "tensor 'w' is a JSON array, not an object with dtype, shape and "
                       "data_offsets"));
}

TEST(SafetensorsReader, RefusesAnEntryMissingAKey) {
  EXPECT_TRUE(Contains(RefusalOf(FileBytes(R"({"w":{"shape":[1],"data_offsets":[0,1]}})", "a")),
                       "tensor 'w' has no 'dtype'"));
  EXPECT_TRUE(Contains(RefusalOf(FileBytes(R"({"w":{"dtype":"U8","data_offsets":[0,1]}})", "a")),
                       "tensor 'w' has no 'shape'"));
  EXPECT_TRUE(Contains(RefusalOf(FileBytes(R"({"w":{"dtype":"U8","shape":[1]}})", "a")),
                       "tensor 'w' has no 'data_offsets'"));
}

TEST(SafetensorsReader, RefusesAnEntryWithAnUnknownKey) {
  const std::string header =
      R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"strides":[1]}})";
  EXPECT_TRUE(Contains(RefusalOf(FileBytes(header, "a")),
                       "tensor 'w' has unknown key 'strides' (expected dtype, shape and "
                       "data_offsets)"));
}

TEST(SafetensorsReader, RefusesAnEntryWithWrongTypes) {
  const auto refusal = [](std::string_view dtype, std::string_view shape,
                          std::string_view offsets) {
    return RefusalOf(FileBytes("{\"w\":" + Entry(dtype, shape, offsets) + "}", "abcd"));
  };
  EXPECT_TRUE(
      Contains(refusal("5", "[4]", "[0,4]"), "tensor 'w' dtype is a JSON number, not a string"));
  EXPECT_TRUE(Contains(refusal("\"U8\"", "4", "[0,4]"),
                       "tensor 'w' shape '4' is not an array of integers"));
  EXPECT_TRUE(Contains(refusal("\"U8\"", "[4.0]", "[0,4]"),
                       "tensor 'w' shape '[4.0]' is not an array of integers"));
  EXPECT_TRUE(Contains(refusal("\"U8\"", "[\"4\"]", "[0,4]"), "is not an array of integers"));
  for (const std::string_view offsets :
       {"\"0-4\"", "[0]", "[0,4,4]", "[-1,3]", "[0,4.0]", "[0,null]", "{}"}) {
    EXPECT_TRUE(Contains(refusal("\"U8\"", "[4]", offsets),
                         " are not two non-negative integers [begin, end]"))
        << offsets;
  }
}

TEST(SafetensorsReader, RefusesAnUnknownDtypeListingTheKnownOnes) {
  const std::string message =
      RefusalOf(FileBytes("{\"w\":" + Entry("\"U16\"", "[2]", "[0,4]") + "}", "abcd"));
  EXPECT_TRUE(Contains(message,
                       "tensor 'w' has dtype 'U16', which tune does not read (it reads "
                       "BOOL, U8, I8, I16, I32, I64, F16, BF16, F32, F64)"));
  EXPECT_TRUE(Contains(message, "convert the tensor to one of those"));
}

TEST(SafetensorsReader, RefusesANegativeDimension) {
  EXPECT_TRUE(
      Contains(RefusalOf(FileBytes("{\"w\":" + Entry("\"U8\"", "[2,-2]", "[0,4]") + "}", "abcd")),
               "tensor 'w' shape [2, -2] has a negative dimension"));
  // Two negative dimensions multiply to a positive count; still refused.
  EXPECT_TRUE(
      Contains(RefusalOf(FileBytes("{\"w\":" + Entry("\"U8\"", "[-2,-2]", "[0,4]") + "}", "abcd")),
               "has a negative dimension"));
}

TEST(SafetensorsReader, RefusesAShapeWhoseSizeOverflows) {
  // 2^32 * 2^32 elements: the element count alone wraps to 0 in 64 bits.
  EXPECT_TRUE(Contains(
      RefusalOf(FileBytes("{\"w\":" + Entry("\"U8\"", "[4294967296,4294967296]", "[0,0]") + "}")),
      "tensor 'w' shape [4294967296, 4294967296] of U8 is too large: its byte size does not fit "
      "in 64 bits"));
  // 2^62 elements fit; 2^62 * 4 bytes do not.
  EXPECT_TRUE(Contains(
      RefusalOf(FileBytes("{\"w\":" + Entry("\"F32\"", "[4611686018427387904]", "[0,0]") + "}")),
      "is too large"));
  EXPECT_TRUE(Contains(
      RefusalOf(FileBytes("{\"w\":" + Entry("\"U8\"", "[9223372036854775808,0]", "[0,0]") + "}")),
      "has a dimension too large for a tensor"));
}

TEST(SafetensorsReader, RefusesOffsetsThatEndBeforeTheyBegin) {
  EXPECT_TRUE(
      Contains(RefusalOf(FileBytes("{\"w\":" + Entry("\"U8\"", "[0]", "[4,0]") + "}", "abcd")),
               "tensor 'w' data_offsets [4, 0] end before they begin"));
}

TEST(SafetensorsReader, RefusesOffsetsThatDisagreeWithTheShape) {
  const std::string message = RefusalOf(
      FileBytes("{\"x\":" + Entry("\"F32\"", "[2,2]", "[0,12]") + "}", std::string(12, '\0')));
  EXPECT_EQ(message,
            "model.safetensors: tensor 'x' data_offsets [0, 12] do not match its shape [2, 2] of "
            "F32 (16 bytes); the file is corrupt: re-download or re-export it");
}

TEST(SafetensorsReader, RefusesOffsetsPastTheEndOfTheDataBuffer) {
  EXPECT_TRUE(
      Contains(RefusalOf(FileBytes("{\"w\":" + Entry("\"U8\"", "[8]", "[0,8]") + "}", "abcd")),
               "tensor 'w' data_offsets [0, 8] run past the end of the 4-byte data buffer"));
  // An offset near 2^64 must not wrap around when the end is computed.
  EXPECT_TRUE(Contains(
      RefusalOf(FileBytes(
          "{\"w\":" + Entry("\"U8\"", "[1]", "[18446744073709551614,18446744073709551615]") + "}",
          "a")),
      "run past the end of the 1-byte data buffer"));
}

TEST(SafetensorsReader, RefusesOverlappingTensors) {
  const std::string header = "{\"a\":" + Entry("\"U8\"", "[4]", "[0,4]") +
                             ",\"b\":" + Entry("\"U8\"", "[4]", "[2,6]") + "}";
  EXPECT_TRUE(Contains(RefusalOf(FileBytes(header, "abcdef")),
                       "tensors 'a' [0, 4] and 'b' [2, 6] overlap"));
  const std::string same = "{\"a\":" + Entry("\"U8\"", "[4]", "[0,4]") +
                           ",\"b\":" + Entry("\"U8\"", "[4]", "[0,4]") + "}";
  EXPECT_TRUE(
      Contains(RefusalOf(FileBytes(same, "abcd")), "tensors 'a' [0, 4] and 'b' [0, 4] overlap"));
}

TEST(SafetensorsReader, RefusesAGapBetweenTensors) {
  const std::string header = "{\"a\":" + Entry("\"U8\"", "[2]", "[0,2]") +
                             ",\"b\":" + Entry("\"U8\"", "[2]", "[4,6]") + "}";
  EXPECT_TRUE(Contains(RefusalOf(FileBytes(header, "abcdef")),
                       "bytes [2, 4] of the data buffer belong to no tensor (they come before "
                       "'b')"));
  EXPECT_TRUE(
      Contains(RefusalOf(FileBytes("{\"a\":" + Entry("\"U8\"", "[2]", "[2,4]") + "}", "abcd")),
               "bytes [0, 2] of the data buffer belong to no tensor"));
}

TEST(SafetensorsReader, RefusesTrailingBytesNoTensorOwns) {
  EXPECT_TRUE(
      Contains(RefusalOf(FileBytes("{\"a\":" + Entry("\"U8\"", "[2]", "[0,2]") + "}", "abcd")),
               "bytes [2, 4] at the end of the data buffer belong to no tensor"));
  EXPECT_TRUE(Contains(RefusalOf(FileBytes("{}", "x")),
                       "bytes [0, 1] at the end of the data buffer belong to no tensor"));
}

TEST(SafetensorsReader, RefusesMetadataThatIsNotAStringToStringObject) {
  EXPECT_TRUE(Contains(RefusalOf(FileBytes(R"({"__metadata__":["format","pt"]})")),
                       "__metadata__ is a JSON array, not an object of strings"));
  EXPECT_TRUE(Contains(RefusalOf(FileBytes(R"({"__metadata__":{"step":5}})")),
                       "__metadata__ 'step' is a JSON number, not a string"));
}

TEST(SafetensorsReader, KeepsMessagesOnOneLineWhateverTheNames) {
  const std::string header = "{\"a\\nb'\\u0007\":[]}";
  EXPECT_TRUE(Contains(RefusalOf(FileBytes(header)), "tensor 'a\\x0ab\\x27\\x07' is a JSON array"));
  const std::string long_name(1000, 'n');
  const std::string message = RefusalOf(FileBytes("{\"" + long_name + "\":[]}"));
  EXPECT_TRUE(Contains(message, "nnn...' is a JSON array"));
  EXPECT_LT(message.size(), 400u);
}

// --- What valid files give back.

TEST(SafetensorsReader, ReadsAFileWrittenByPython) {
  // safetensors.torch.save_file({"weight": bf16 [[1, 2], [3, 4]], "bias": f32 [0.5, -1]},
  // metadata={"format": "pt"}): metadata first, tensors by dtype size then name, header padded
  // with spaces to 152 bytes.
  const std::string file = std::string("\x98\0\0\0\0\0\0\0", 8) +
                           R"({"__metadata__":{"format":"pt"},)"
                           R"("bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("weight":{"dtype":"BF16","shape":[2,2],"data_offsets":[8,16]}})"
                           "  " +
                           std::string("\x00\x00\x00\x3f\x00\x00\x80\xbf", 8) +
                           std::string("\x80\x3f\x00\x40\x40\x40\x80\x40", 8);
  ASSERT_EQ(file.size(), 8u + 152u + 16u);
  const Header header = ParseHeader(AsBytes(file), kFileName);
  EXPECT_EQ(header.data_offset_bytes, 160u);
  EXPECT_EQ(header.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  ASSERT_EQ(header.tensors.size(), 2u);
  EXPECT_EQ(header.tensors[0].name, "bias");
  EXPECT_EQ(header.tensors[0].dtype, Dtype::kF32);
  EXPECT_EQ(header.tensors[0].shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(header.tensors[0].offset_bytes, 0u);
  EXPECT_EQ(header.tensors[0].size_bytes, 8u);
  EXPECT_EQ(header.tensors[1].name, "weight");
  EXPECT_EQ(header.tensors[1].dtype, Dtype::kBF16);
  EXPECT_EQ(header.tensors[1].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(header.tensors[1].offset_bytes, 8u);
  EXPECT_EQ(header.tensors[1].size_bytes, 8u);
}

TEST(SafetensorsReader, ListsTensorsInFileOffsetOrderWhateverTheKeyOrder) {
  const std::string header = "{\"z\":" + Entry("\"U8\"", "[1]", "[0,1]") +
                             ",\"a\":" + Entry("\"I16\"", "[1]", "[3,5]") +
                             ",\"m\":" + Entry("\"U8\"", "[2]", "[1,3]") + "}";
  const Header parsed = ParseHeader(AsBytes(FileBytes(header, "abcde")), kFileName);
  ASSERT_EQ(parsed.tensors.size(), 3u);
  EXPECT_EQ(parsed.tensors[0].name, "z");
  EXPECT_EQ(parsed.tensors[1].name, "m");
  EXPECT_EQ(parsed.tensors[2].name, "a");
}

TEST(SafetensorsReader, AcceptsScalarsEmptyTensorsAndAnEmptyFile) {
  const std::string header = "{\"scalar\":" + Entry("\"F64\"", "[]", "[0,8]") +
                             ",\"empty\":" + Entry("\"F32\"", "[0,3]", "[8,8]") +
                             ",\"last_empty\":" + Entry("\"I8\"", "[4,0]", "[8,8]") + "}";
  const Header parsed = ParseHeader(AsBytes(FileBytes(header, std::string(8, '\1'))), kFileName);
  ASSERT_EQ(parsed.tensors.size(), 3u);
  EXPECT_EQ(parsed.tensors[0].name, "scalar");
  EXPECT_EQ(parsed.tensors[0].size_bytes, 8u);
  EXPECT_TRUE(parsed.tensors[0].shape.empty());
  EXPECT_EQ(parsed.tensors[1].size_bytes, 0u);

  const Header nothing = ParseHeader(AsBytes(FileBytes("{}      ")), kFileName);
  EXPECT_TRUE(nothing.tensors.empty());
  EXPECT_TRUE(nothing.metadata.empty());
  EXPECT_EQ(nothing.data_offset_bytes, 16u);
}

TEST(SafetensorsReader, KnowsEveryDtypeNameAndSize) {
  const std::vector<std::tuple<Dtype, std::string_view, size_t>> expected = {
      {Dtype::kBool, "BOOL", 1}, {Dtype::kU8, "U8", 1},     {Dtype::kI8, "I8", 1},
      {Dtype::kI16, "I16", 2},   {Dtype::kI32, "I32", 4},   {Dtype::kI64, "I64", 8},
      {Dtype::kF16, "F16", 2},   {Dtype::kBF16, "BF16", 2}, {Dtype::kF32, "F32", 4},
      {Dtype::kF64, "F64", 8}};
  for (const auto& [dtype, name, size] : expected) {
    EXPECT_EQ(DtypeName(dtype), name);
    EXPECT_EQ(DtypeSize(dtype), size) << name;
  }
}

// --- File: opening and mapping.

// The message File::Open refuses `path` with; fails the test if it opens.
std::string OpenRefusal(const fs::path& path) {
  try {
    File::Open(path);
  } catch (const UserError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(path.string() + ": ", 0), 0u) << message;
    return message;
  }
  ADD_FAILURE() << "File::Open accepted " << path;
  return "";
}

TEST(SafetensorsFile, RefusesAMissingFile) {
  TempDir dir;
  EXPECT_TRUE(Contains(OpenRefusal(dir.path() / "absent.safetensors"),
                       "cannot open: No such file or directory; check the path"));
}

TEST(SafetensorsFile, RefusesAFolder) {
  TempDir dir;
  EXPECT_TRUE(Contains(OpenRefusal(dir.path()), "is not a regular file"));
}

TEST(SafetensorsFile, RefusesAnEmptyOrHostileFileNamingIt) {
  TempDir dir;
  EXPECT_TRUE(Contains(OpenRefusal(dir.Write("empty.safetensors", "")), "is 0 bytes long"));
  EXPECT_TRUE(Contains(OpenRefusal(dir.Write("long.safetensors", FileBytes("{}", "", 1 << 20))),
                       "runs past the end of the file"));
}

TEST(SafetensorsFile, FindsTensorsByNameAndGivesTheirBytes) {
  TempDir dir;
  const std::string header = "{\"a\":" + Entry("\"U8\"", "[2]", "[0,2]") +
                             ",\"b\":" + Entry("\"I16\"", "[1]", "[2,4]") + "}";
  const auto file = File::Open(dir.Write("m.safetensors", FileBytes(header, "xyzw")));
  const TensorInfo* b = file->Find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, Dtype::kI16);
  const std::span<const std::byte> bytes = file->Bytes(*b);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), "zw");
  EXPECT_EQ(file->Find("c"), nullptr);
  EXPECT_EQ(file->path(), dir.path() / "m.safetensors");

  TensorInfo outside = *b;
  outside.offset_bytes = 3;
  EXPECT_THROW(file->Bytes(outside), std::out_of_range);
}

// --- Writer.

// One tensor of `dtype` and `shape`, its bytes counting up from `seed`.
struct OwnedTensor {
  std::string name;
  Dtype dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;

  TensorToWrite View() const { return {name, dtype, shape, AsBytes(bytes)}; }
};

OwnedTensor MakeTensor(std::string name, Dtype dtype, std::vector<int64_t> shape, uint8_t seed) {
  size_t count = 1;
  for (const int64_t dim : shape) count *= static_cast<size_t>(dim);
  std::vector<uint8_t> bytes(count * DtypeSize(dtype));
  for (size_t i = 0; i < bytes.size(); ++i) {
    // BOOL bytes must stay 0 or 1 for torch readers; other dtypes get every byte value.
    bytes[i] = static_cast<uint8_t>(dtype == Dtype::kBool ? (i + seed) % 2 : i * 7 + seed);
  }
  return {std::move(name), dtype, std::move(shape), std::move(bytes)};
}

std::vector<TensorToWrite> Views(const std::vector<OwnedTensor>& tensors) {
  std::vector<TensorToWrite> views;
  for (const OwnedTensor& tensor : tensors) views.push_back(tensor.View());
  return views;
}

TEST(SafetensorsWriter, RoundTripsEveryDtypeThroughFile) {
  TempDir dir;
  std::vector<OwnedTensor> tensors;
  uint8_t seed = 1;
  for (const Dtype dtype : {Dtype::kBool, Dtype::kU8, Dtype::kI8, Dtype::kI16, Dtype::kI32,
                            Dtype::kI64, Dtype::kF16, Dtype::kBF16, Dtype::kF32, Dtype::kF64}) {
    const std::string name(DtypeName(dtype));
    tensors.push_back(MakeTensor(name + ".matrix", dtype, {3, 5}, seed++));
    tensors.push_back(MakeTensor(name + ".scalar", dtype, {}, seed++));
    tensors.push_back(MakeTensor(name + ".empty", dtype, {0, 4}, seed++));
  }
  const fs::path path = dir.path() / "all.safetensors";
  Write(path, Views(tensors), {});

  const auto file = File::Open(path);
  EXPECT_EQ(file->header().tensors.size(), tensors.size());
  for (const OwnedTensor& tensor : tensors) {
    const TensorInfo* info = file->Find(tensor.name);
    ASSERT_NE(info, nullptr) << tensor.name;
    EXPECT_EQ(info->dtype, tensor.dtype) << tensor.name;
    EXPECT_EQ(info->shape, tensor.shape) << tensor.name;
    const std::span<const std::byte> bytes = file->Bytes(*info);
    ASSERT_EQ(bytes.size(), tensor.bytes.size()) << tensor.name;
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), AsBytes(tensor.bytes).begin()))
        << tensor.name;
  }
}

TEST(SafetensorsWriter, WritesTensorsInTheGivenOrder) {
  TempDir dir;
  const std::vector<OwnedTensor> tensors = {MakeTensor("z", Dtype::kF32, {2}, 1),
                                            MakeTensor("a", Dtype::kU8, {3}, 2),
                                            MakeTensor("m", Dtype::kI64, {1}, 3)};
  const fs::path path = dir.path() / "order.safetensors";
  Write(path, Views(tensors), {});
  const auto file = File::Open(path);
  const std::vector<TensorInfo>& infos = file->header().tensors;
  ASSERT_EQ(infos.size(), 3u);
  EXPECT_EQ(infos[0].name, "z");
  EXPECT_EQ(infos[0].offset_bytes, 0u);
  EXPECT_EQ(infos[1].name, "a");
  EXPECT_EQ(infos[1].offset_bytes, 8u);
  EXPECT_EQ(infos[2].name, "m");
  EXPECT_EQ(infos[2].offset_bytes, 11u);
}

TEST(SafetensorsWriter, RoundTripsMetadata) {
  TempDir dir;
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"tune.lineage", R"({"run":"rank-3"})"}, {"ünïcode", "line\nbreak"}};
  const fs::path path = dir.path() / "meta.safetensors";
  Write(path, {}, metadata);
  EXPECT_EQ(File::Open(path)->header().metadata, metadata);
}

TEST(SafetensorsWriter, PadsTheHeaderWithSpacesToAMultipleOf8Bytes) {
  TempDir dir;
  for (size_t name_length = 1; name_length <= 8; ++name_length) {
    const std::vector<OwnedTensor> tensors = {
        MakeTensor(std::string(name_length, 'w'), Dtype::kF32, {2}, 0)};
    const fs::path path = dir.path() / "padded.safetensors";
    Write(path, Views(tensors), {});
    const std::string bytes = ReadFile(path);
    ASSERT_GE(bytes.size(), 8u);
    uint64_t header_size = 0;
    for (int i = 7; i >= 0; --i) header_size = header_size << 8 | static_cast<uint8_t>(bytes[i]);
    EXPECT_EQ(header_size % 8, 0u) << name_length;
    EXPECT_EQ(bytes.size(), 8 + header_size + 8) << name_length;
    const std::string header = bytes.substr(8, header_size);
    const size_t json_end = header.rfind('}') + 1;
    EXPECT_EQ(header.substr(json_end), std::string(header.size() - json_end, ' '));
    EXPECT_LT(header.size() - json_end, 8u);
    EXPECT_EQ(File::Open(path)->header().data_offset_bytes % 8, 0u);
  }
}

TEST(SafetensorsWriter, ReplacesAnExistingFileAndLeavesNoTemporaryFile) {
  TempDir dir;
  const fs::path path = dir.Write("model.safetensors", "old content");
  const std::vector<OwnedTensor> tensors = {MakeTensor("w", Dtype::kU8, {4}, 9)};
  Write(path, Views(tensors), {{"v", "2"}});
  EXPECT_EQ(File::Open(path)->header().metadata.at("v"), "2");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(SafetensorsWriter, LeavesAnOpenFilesMappingIntactWhenReplacingIt) {
  TempDir dir;
  const fs::path path = dir.path() / "model.safetensors";
  Write(path, Views({MakeTensor("w", Dtype::kU8, {4}, 1)}), {});
  const auto before = File::Open(path);
  Write(path, Views({MakeTensor("other", Dtype::kU8, {2}, 2)}), {});
  const std::span<const std::byte> bytes = before->Bytes(*before->Find("w"));
  EXPECT_EQ(std::to_integer<int>(bytes[1]), 8);
  EXPECT_NE(File::Open(path)->Find("other"), nullptr);
}

// The message Write refuses `tensors` with; also checks that the old file is still there and
// untouched, and no temporary file was left behind.
std::string WriteRefusal(const std::vector<TensorToWrite>& tensors,
                         const std::map<std::string, std::string>& metadata = {}) {
  TempDir dir;
  const fs::path path = dir.Write("out.safetensors", "previous");
  try {
    Write(path, tensors, metadata);
  } catch (const UserError& e) {
    EXPECT_EQ(ReadFile(path), "previous");
    EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
    const std::string message = e.what();
    EXPECT_EQ(message.rfind(path.string() + ": ", 0), 0u) << message;
    return message;
  }
  ADD_FAILURE() << "Write accepted bad tensors";
  return "";
}

TEST(SafetensorsWriter, RefusesDuplicateNames) {
  const std::vector<OwnedTensor> tensors = {MakeTensor("w", Dtype::kU8, {1}, 0),
                                            MakeTensor("w", Dtype::kU8, {1}, 0)};
  EXPECT_TRUE(Contains(WriteRefusal(Views(tensors)),
                       "tensor 'w' is given twice; give each tensor a different name"));
}

TEST(SafetensorsWriter, RefusesTheReservedMetadataName) {
  EXPECT_TRUE(Contains(WriteRefusal(Views({MakeTensor("__metadata__", Dtype::kU8, {1}, 0)})),
                       "cannot hold a tensor named '__metadata__'"));
}

TEST(SafetensorsWriter, RefusesDataWhoseSizeDoesNotMatchShapeAndDtype) {
  OwnedTensor tensor = MakeTensor("w", Dtype::kF32, {2, 2}, 0);
  tensor.bytes.resize(12);
  EXPECT_TRUE(Contains(WriteRefusal(Views({tensor})),
                       "tensor 'w' has 12 bytes of data, but shape [2, 2] of F32 needs 16"));
  OwnedTensor huge = MakeTensor("h", Dtype::kF32, {0}, 0);
  huge.shape = {INT64_MAX, INT64_MAX};
  EXPECT_TRUE(Contains(WriteRefusal(Views({huge})), "needs more than 2^64"));
}

TEST(SafetensorsWriter, RefusesANegativeDimension) {
  OwnedTensor tensor = MakeTensor("w", Dtype::kU8, {1}, 0);
  tensor.shape = {-1, -1};
  EXPECT_TRUE(Contains(WriteRefusal(Views({tensor})), "tensor 'w' shape [-1, -1] has a negative"));
}

TEST(SafetensorsWriter, RefusesANameThatIsNotUtf8) {
  EXPECT_TRUE(Contains(WriteRefusal(Views({MakeTensor("w\xff", Dtype::kU8, {1}, 0)})),
                       "is not valid UTF-8"));
}

TEST(SafetensorsWriter, RefusesAFolderThatDoesNotExist) {
  TempDir dir;
  const fs::path path = dir.path() / "missing" / "out.safetensors";
  try {
    Write(path, {}, {});
    FAIL() << "expected an error";
  } catch (const UserError& e) {
    EXPECT_TRUE(Contains(e.what(), path.string() + ": cannot create a temporary file in " +
                                       (dir.path() / "missing").string() +
                                       ": No such file or directory"));
  }
}

}  // namespace
}  // namespace tune::safetensors
