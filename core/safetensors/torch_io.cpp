#include "safetensors/torch_io.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>

#include "util/error.h"

namespace tune::safetensors {
namespace {

// safetensors data is little-endian; tensors are used in place, so the host must be too.
static_assert(std::endian::native == std::endian::little);

at::ScalarType TorchType(Dtype dtype) {
  switch (dtype) {
    case Dtype::kBool:
      return at::kBool;
    case Dtype::kU8:
      return at::kByte;
    case Dtype::kI8:
      return at::kChar;
    case Dtype::kI16:
      return at::kShort;
    case Dtype::kI32:
      return at::kInt;
    case Dtype::kI64:
      return at::kLong;
    case Dtype::kF16:
      return at::kHalf;
    case Dtype::kBF16:
      return at::kBFloat16;
    case Dtype::kF32:
      return at::kFloat;
    case Dtype::kF64:
      return at::kDouble;
  }
  throw std::invalid_argument("safetensors::TorchType: not a Dtype");
}

std::optional<Dtype> FileType(at::ScalarType type) {
  switch (type) {
    case at::kBool:
      return Dtype::kBool;
    case at::kByte:
      return Dtype::kU8;
    case at::kChar:
      return Dtype::kI8;
    case at::kShort:
      return Dtype::kI16;
    case at::kInt:
      return Dtype::kI32;
    case at::kLong:
      return Dtype::kI64;
    case at::kHalf:
      return Dtype::kF16;
    case at::kBFloat16:
      return Dtype::kBF16;
    case at::kFloat:
      return Dtype::kF32;
    case at::kDouble:
      return Dtype::kF64;
    default:
      return std::nullopt;
  }
}

}  // namespace

at::Tensor LoadTensor(const std::shared_ptr<const File>& file, const TensorInfo& info) {
  const std::span<const std::byte> bytes = file->Bytes(info);
  if (info.dtype == Dtype::kBool) {
    const auto bad = std::find_if(bytes.begin(), bytes.end(),
                                  [](std::byte b) { return std::to_integer<unsigned>(b) > 1; });
    if (bad != bytes.end()) {
      throw UserError(file->path().string() + ": BOOL tensor " + QuoteName(info.name) +
                      " holds the byte " + std::to_string(std::to_integer<unsigned>(*bad)) +
                      " at element " + std::to_string(bad - bytes.begin()) +
                      "; booleans are 0 or 1, the file is corrupt: re-download or re-export it");
    }
  }
  const auto options = at::TensorOptions().dtype(TorchType(info.dtype)).device(at::kCPU);
  // An empty tensor has no bytes to share, and its address may be one past the mapping's end.
  if (info.size_bytes == 0) return at::empty(info.shape, options);

  // Torch's kernels assume element-aligned data. The data buffer starts 8-byte aligned in files
  // tune writes, but other writers need not pad the header, so a misaligned tensor is copied.
  // from_blob takes a mutable pointer: the mapping is writable copy-on-write (see File).
  void* data = const_cast<std::byte*>(bytes.data());
  if (reinterpret_cast<uintptr_t>(data) % DtypeSize(info.dtype) != 0) {
    at::Tensor copy = at::empty(info.shape, options);
    std::memcpy(copy.data_ptr(), data, bytes.size());
    return copy;
  }
  return at::from_blob(
      data, info.shape, [keep_alive = file](void*) {}, options);
}

std::map<std::string, at::Tensor> LoadAll(const std::filesystem::path& path) {
  const std::shared_ptr<const File> file = File::Open(path);
  std::map<std::string, at::Tensor> tensors;
  for (const TensorInfo& info : file->header().tensors) {
    tensors.emplace(info.name, LoadTensor(file, info));
  }
  return tensors;
}

void Save(const std::filesystem::path& path,
          const std::vector<std::pair<std::string, at::Tensor>>& tensors,
          const std::map<std::string, std::string>& metadata) {
  // Holds the contiguous CPU copies alive while Write reads them.
  std::vector<at::Tensor> held;
  std::vector<TensorToWrite> to_write;
  held.reserve(tensors.size());
  to_write.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) {
      throw UserError(path.string() + ": tensor " + QuoteName(name) +
                      " is undefined; give every tensor a value before saving");
    }
    const std::optional<Dtype> dtype = FileType(tensor.scalar_type());
    if (!dtype) {
      throw UserError(path.string() + ": tensor " + QuoteName(name) + " has dtype " +
                      std::string(c10::toString(tensor.scalar_type())) +
                      ", which safetensors files in tune cannot hold; convert it first");
    }
    at::Tensor cpu = tensor.detach();
    if (cpu.layout() != at::kStrided) cpu = cpu.to_dense();
    cpu = cpu.to(at::kCPU).resolve_neg().contiguous();
    const auto* data = static_cast<const std::byte*>(cpu.data_ptr());
    const size_t size_bytes = static_cast<size_t>(cpu.numel()) * cpu.element_size();
    to_write.push_back(TensorToWrite{
        .name = name, .dtype = *dtype, .shape = cpu.sizes().vec(), .data = {data, size_bytes}});
    held.push_back(std::move(cpu));
  }
  Write(path, to_write, metadata);
}

}  // namespace tune::safetensors
