#include "runtime/runtime_info.h"

#include <torch/cuda.h>

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

}  // namespace tune
