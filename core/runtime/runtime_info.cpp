#include "runtime/runtime_info.h"

#include <torch/cuda.h>
#if TUNE_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "tune/plugin.h"

namespace tune {

extern const char kGitCommit[];

RuntimeInfo DescribeRuntime() {
  constexpr PluginDescriptor build = DescribeThisBuild(nullptr);
  RuntimeInfo info;
  info.tune_version = TUNE_VERSION;
  info.git_commit = kGitCommit;
  info.torch_version = build.torch_version;
  info.compiler = build.compiler;
  info.plugin_abi = static_cast<int>(build.abi_major);
  info.cuda_devices = static_cast<int>(torch::cuda::device_count());
  return info;
}

int64_t PeakCudaMemoryBytes() {
#if TUNE_TORCH_CUDA
  if (!torch::cuda::is_available()) return 0;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(c10::cuda::current_device());
  return stats.allocated_bytes[0].peak;  // [0]: StatType::AGGREGATE, both pools together
#else
  return 0;
#endif
}

int64_t CudaMemoryBytes() {
#if TUNE_TORCH_CUDA
  if (!torch::cuda::is_available()) return 0;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(c10::cuda::current_device());
  return stats.allocated_bytes[0].current;
#else
  return 0;
#endif
}

}  // namespace tune
