// safetensors files as torch tensors.
//
// Tensors loaded here are zero-copy views of the file's copy-on-write mapping (see File) whenever
// their bytes are aligned for their dtype, and copies otherwise. Either way they may be written
// in place: a write changes this process's memory only, never the file, but it is seen by every
// other tensor and Bytes() view of the same File that covers those bytes.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "safetensors/safetensors.h"

namespace tune::safetensors {

// A CPU tensor of `info`'s dtype (BF16 -> at::kBFloat16, U8 -> at::kByte, ...) and shape. It keeps
// `file` (and so its mapping) alive for as long as it, or any view of it, lives. `info` must come
// from file->header(). Refuses a BOOL tensor holding a byte other than 0 or 1, which torch cannot
// represent.
at::Tensor LoadTensor(const std::shared_ptr<const File>& file, const TensorInfo& info);

// Every tensor in the file at `path`, by name.
std::map<std::string, at::Tensor> LoadAll(const std::filesystem::path& path);

// Writes `tensors` in the given order with Write's guarantees (atomic rename, fsync). Tensors on
// another device, non-contiguous, or with a pending negation view are copied to contiguous CPU
// memory first. Refuses undefined tensors and dtypes safetensors cannot hold here (complex,
// quantized, ...).
void Save(const std::filesystem::path& path,
          const std::vector<std::pair<std::string, at::Tensor>>& tensors,
          const std::map<std::string, std::string>& metadata);

}  // namespace tune::safetensors
