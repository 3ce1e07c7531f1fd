// What this tune is and what it can run on: printed by `tune --version`, recorded with every
// adapter version. Kept free of libtorch so that callers do not compile against it.
#pragma once

#include <cstdint>
#include <string>

namespace tune {

struct RuntimeInfo {
  std::string tune_version;  // "0.1.0"
  std::string git_commit;    // 12 hex digits, "-dirty" if built from modified sources, or "unknown"
  std::string torch_version;  // the libtorch tune was compiled against
  std::string compiler;       // "gcc 12"
  int plugin_abi = 0;
  int cuda_devices = 0;  // CUDA devices libtorch can use; 0 on CPU-only builds
};

RuntimeInfo DescribeRuntime();

// The most GPU memory libtorch's CUDA allocator has held for tensors at once in this process, on
// the current CUDA device; 0 when libtorch has no CUDA or no tensor was ever put on a GPU.
int64_t PeakCudaMemoryBytes();
// What that allocator holds for tensors now; 0 in the same cases.
int64_t CudaMemoryBytes();

}  // namespace tune
