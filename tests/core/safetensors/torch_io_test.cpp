#include "safetensors/torch_io.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "support/test_support.h"
#include "util/error.h"

namespace tune::safetensors {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// A safetensors file assembled byte by byte: the 8-byte little-endian length of `header`, the
// header, then `data`.
std::string FileBytes(std::string_view header, std::string_view data) {
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  bytes += header;
  bytes += data;
  return bytes;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Same dtype, shape and bytes (so NaN payloads and -0.0 count, unlike at::equal).
::testing::AssertionResult SameBytes(const at::Tensor& expected, const at::Tensor& actual) {
  if (expected.scalar_type() != actual.scalar_type()) {
    return ::testing::AssertionFailure()
           << "dtype " << actual.scalar_type() << " != " << expected.scalar_type();
  }
  if (expected.sizes() != actual.sizes()) {
    return ::testing::AssertionFailure()
           << "shape " << actual.sizes() << " != " << expected.sizes();
  }
  const at::Tensor a = expected.contiguous();
  const at::Tensor b = actual.contiguous();
  if (a.numel() > 0 && std::memcmp(a.data_ptr(), b.data_ptr(), a.numel() * a.element_size()) != 0) {
    return ::testing::AssertionFailure() << "bytes differ";
  }
  return ::testing::AssertionSuccess();
}

bool PointsInto(const void* pointer, std::span<const std::byte> bytes) {
  const auto* p = static_cast<const std::byte*>(pointer);
  return p >= bytes.data() && p < bytes.data() + bytes.size();
}

TEST(SafetensorsTorch, RoundTripsF32Bf16F16AndI64Exactly) {
  TempDir dir;
  at::manual_seed(7);
  const at::Tensor f32 = at::randn({17, 9});
  const at::Tensor special = at::tensor(
      {0.0f, -0.0f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
       std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max()});
  const at::Tensor bf16 = at::randn({4, 3, 2}).to(at::kBFloat16);
  const at::Tensor f16 = at::randn({33}).to(at::kHalf);
  const at::Tensor i64 = at::tensor({std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{0},
                                     std::numeric_limits<int64_t>::max()});
  const std::vector<std::pair<std::string, at::Tensor>> tensors = {
      {"f32", f32}, {"special", special}, {"bf16", bf16}, {"f16", f16}, {"i64", i64}};
  const fs::path path = dir.path() / "round.safetensors";
  Save(path, tensors, {{"format", "pt"}});

  const std::map<std::string, at::Tensor> loaded = LoadAll(path);
  ASSERT_EQ(loaded.size(), tensors.size());
  for (const auto& [name, tensor] : tensors) {
    ASSERT_EQ(loaded.count(name), 1u) << name;
    EXPECT_TRUE(SameBytes(tensor, loaded.at(name))) << name;
    EXPECT_TRUE(loaded.at(name).device().is_cpu()) << name;
  }
  EXPECT_TRUE(at::equal(loaded.at("bf16"), bf16));
  EXPECT_EQ(File::Open(path)->header().metadata.at("format"), "pt");
}

TEST(SafetensorsTorch, MapsEveryDtypeToTheMatchingTorchType) {
  TempDir dir;
  const std::vector<std::tuple<std::string, at::ScalarType, Dtype>> types = {
      {"bool", at::kBool, Dtype::kBool}, {"u8", at::kByte, Dtype::kU8},
      {"i8", at::kChar, Dtype::kI8},     {"i16", at::kShort, Dtype::kI16},
      {"i32", at::kInt, Dtype::kI32},    {"i64", at::kLong, Dtype::kI64},
      {"f16", at::kHalf, Dtype::kF16},   {"bf16", at::kBFloat16, Dtype::kBF16},
      {"f32", at::kFloat, Dtype::kF32},  {"f64", at::kDouble, Dtype::kF64}};
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, type, dtype] : types) {
    tensors.emplace_back(name, (at::arange(12) % 2).reshape({3, 4}).to(type));
  }
  const fs::path path = dir.path() / "types.safetensors";
  Save(path, tensors, {});
  const auto file = File::Open(path);
  for (size_t i = 0; i < types.size(); ++i) {
    const auto& [name, type, dtype] = types[i];
    const TensorInfo* info = file->Find(name);
    ASSERT_NE(info, nullptr) << name;
    EXPECT_EQ(info->dtype, dtype) << name;
    const at::Tensor loaded = LoadTensor(file, *info);
    EXPECT_EQ(loaded.scalar_type(), type) << name;
    EXPECT_TRUE(SameBytes(tensors[i].second, loaded)) << name;
  }
}

TEST(SafetensorsTorch, LoadTensorIsZeroCopyForAlignedData) {
  TempDir dir;
  const fs::path path = dir.path() / "aligned.safetensors";
  // Written in this order, every offset is a multiple of its element size.
  Save(path,
       {{"d", at::randn({5}, at::kDouble)},
        {"f", at::randn({3})},
        {"h", at::randn({3}).to(at::kHalf)}},
       {});
  const auto file = File::Open(path);
  for (const TensorInfo& info : file->header().tensors) {
    const at::Tensor tensor = LoadTensor(file, info);
    EXPECT_EQ(tensor.data_ptr(), file->Bytes(info).data()) << info.name;
  }
}

TEST(SafetensorsTorch, LoadTensorCopiesMisalignedDataWithTheRightValues) {
  TempDir dir;
  // Another writer may leave the header unpadded: here the data buffer starts at file offset 17,
  // and inside it an I64 starts 4 bytes in.
  std::string header = R"({"f":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("p":{"dtype":"U8","shape":[4],"data_offsets":[8,12]},)"
                       R"("l":{"dtype":"I64","shape":[1],"data_offsets":[12,20]}})";
  while (header.size() % 8 != 1) header += ' ';
  const float floats[2] = {1.5f, -2.25f};
  const int64_t big = -1234567890123;
  std::string data(reinterpret_cast<const char*>(floats), sizeof(floats));
  data += "abcd";
  data.append(reinterpret_cast<const char*>(&big), sizeof(big));
  const auto file = File::Open(dir.Write("misaligned.safetensors", FileBytes(header, data)));

  const TensorInfo& f = *file->Find("f");
  ASSERT_NE(reinterpret_cast<uintptr_t>(file->Bytes(f).data()) % 4, 0u);
  const at::Tensor loaded_f = LoadTensor(file, f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(loaded_f.data_ptr()) % 4, 0u);
  EXPECT_FALSE(PointsInto(loaded_f.data_ptr(), file->Bytes(f)));
  EXPECT_TRUE(at::equal(loaded_f, at::tensor({1.5f, -2.25f})));

  const at::Tensor loaded_l = LoadTensor(file, *file->Find("l"));
  EXPECT_EQ(loaded_l.item<int64_t>(), big);
  // Single bytes are always aligned, so they are still shared.
  const TensorInfo& p = *file->Find("p");
  EXPECT_EQ(LoadTensor(file, p).data_ptr(), file->Bytes(p).data());
}

TEST(SafetensorsTorch, TensorKeepsTheFileMappedAfterEveryOtherOwnerIsGone) {
  TempDir dir;
  const fs::path path = dir.path() / "alive.safetensors";
  const at::Tensor original = at::randn({64, 64});
  Save(path, {{"w", original}}, {});
  std::shared_ptr<const File> file = File::Open(path);
  const std::weak_ptr<const File> watch = file;
  at::Tensor view = LoadTensor(file, *file->Find("w")).slice(0, 10, 20);
  file.reset();
  fs::remove(path);
  EXPECT_FALSE(watch.expired());
  EXPECT_TRUE(at::equal(view, original.slice(0, 10, 20)));
  view.reset();
  EXPECT_TRUE(watch.expired());
}

TEST(SafetensorsTorch, InPlaceWritesChangeTheTensorButNeverTheFile) {
  TempDir dir;
  const fs::path path = dir.path() / "cow.safetensors";
  Save(path, {{"w", at::ones({8, 8})}}, {});
  const std::string bytes_before = ReadFile(path);
  {
    const auto file = File::Open(path);
    at::Tensor loaded = LoadTensor(file, *file->Find("w"));
    ASSERT_EQ(loaded.data_ptr(), file->Bytes(*file->Find("w")).data());
    loaded.mul_(3);
    EXPECT_TRUE(at::equal(loaded, at::full({8, 8}, 3.0f)));
  }
  EXPECT_EQ(ReadFile(path), bytes_before);
  EXPECT_TRUE(at::equal(LoadAll(path).at("w"), at::ones({8, 8})));
}

TEST(SafetensorsTorch, SaveWritesNonContiguousTensorsAsTheirValues) {
  TempDir dir;
  const at::Tensor base = at::arange(24, at::kFloat).reshape({4, 6});
  const std::vector<std::pair<std::string, at::Tensor>> tensors = {
      {"transposed", base.t()},
      {"strided", base.slice(1, 0, 6, 2)},
      {"expanded", at::arange(3, at::kLong).expand({4, 3})},
      {"negated_view", base._neg_view()}};
  const fs::path path = dir.path() / "views.safetensors";
  Save(path, tensors, {});
  const std::map<std::string, at::Tensor> loaded = LoadAll(path);
  for (const auto& [name, tensor] : tensors) {
    EXPECT_TRUE(at::equal(loaded.at(name), tensor.resolve_neg())) << name;
    EXPECT_TRUE(loaded.at(name).is_contiguous()) << name;
  }
}

TEST(SafetensorsTorch, LoadsEmptyTensorsAndScalars) {
  TempDir dir;
  const fs::path path = dir.path() / "small.safetensors";
  Save(path, {{"scalar", at::scalar_tensor(2.5, at::kDouble)}, {"empty", at::empty({0, 7})}}, {});
  const std::map<std::string, at::Tensor> loaded = LoadAll(path);
  EXPECT_EQ(loaded.at("scalar").dim(), 0);
  EXPECT_EQ(loaded.at("scalar").item<double>(), 2.5);
  EXPECT_EQ(loaded.at("empty").sizes(), (std::vector<int64_t>{0, 7}));
  EXPECT_EQ(loaded.at("empty").scalar_type(), at::kFloat);
}

TEST(SafetensorsTorch, LoadsAFileWrittenByPython) {
  TempDir dir;
  // safetensors.torch.save_file({"weight": bf16 [[1, 2], [3, 4]], "bias": f32 [0.5, -1]},
  // metadata={"format": "pt"}), byte for byte.
  const std::string file = std::string("\x98\0\0\0\0\0\0\0", 8) +
                           R"({"__metadata__":{"format":"pt"},)"
                           R"("bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("weight":{"dtype":"BF16","shape":[2,2],"data_offsets":[8,16]}})"
                           "  " +
                           std::string("\x00\x00\x00\x3f\x00\x00\x80\xbf", 8) +
                           std::string("\x80\x3f\x00\x40\x40\x40\x80\x40", 8);
  const std::map<std::string, at::Tensor> loaded = LoadAll(dir.Write("py.safetensors", file));
  EXPECT_TRUE(at::equal(loaded.at("bias"), at::tensor({0.5f, -1.0f})));
  EXPECT_EQ(loaded.at("weight").scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(loaded.at("weight").to(at::kFloat),
                        at::tensor({1.0f, 2.0f, 3.0f, 4.0f}).reshape({2, 2})));
}

TEST(SafetensorsTorch, LoadRefusesABoolTensorHoldingAByteOtherThanZeroOrOne) {
  TempDir dir;
  const fs::path path = dir.Write(
      "bool.safetensors", FileBytes(R"({"mask":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})",
                                    std::string("\1\0\7", 3)));
  const auto file = File::Open(path);
  try {
    LoadTensor(file, *file->Find("mask"));
    FAIL() << "expected an error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              path.string() +
                  ": BOOL tensor 'mask' holds the byte 7 at element 2; booleans are 0 "
                  "or 1, the file is corrupt: re-download or re-export it");
  }
}

TEST(SafetensorsTorch, SaveRefusesADtypeTheFormatCannotHold) {
  TempDir dir;
  const fs::path path = dir.path() / "complex.safetensors";
  try {
    Save(path, {{"z", at::randn({2}, at::kComplexFloat)}}, {});
    FAIL() << "expected an error";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              path.string() +
                  ": tensor 'z' has dtype ComplexFloat, which safetensors files in "
                  "tune cannot hold; convert it first");
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST(SafetensorsTorch, SaveRefusesAnUndefinedTensor) {
  TempDir dir;
  const fs::path path = dir.path() / "undefined.safetensors";
  EXPECT_THROW(Save(path, {{"w", at::Tensor()}}, {}), UserError);
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace tune::safetensors
