// Host memory of loading a model through the plugin host, as `tune train` loads it: the process's
// resident memory just before the load, its peak by the end of the load (the kernel's high-water
// mark, which includes the mapped checkpoint pages while they are resident) and after it, and the
// bytes of the loaded parameters. Prints one JSON line; bench/load_memory.sh runs it.
//
// On a GPU the parameters live in GPU memory, so the host peak above the baseline is the loader's
// whole cost. On the CPU the parameters are host memory themselves: the loader's cost is the peak
// above the baseline minus the parameter bytes.
//
//   bench_load_model MODEL_DIR [--device cpu|cuda] [--dtype auto|float32|bfloat16]
#include <sys/resource.h>
#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <string>

#include "plugin_host/plugin_host.h"
#include "runtime/runtime_info.h"
#include "tune/model.h"

namespace {

double MiB(double bytes) { return bytes / 1048576.0; }

// VmRSS from /proc/self/status, in bytes; the peak (ru_maxrss) cannot be reset, so the baseline
// is the current figure.
double ResidentBytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  double kib = 0;
  while (status >> key) {
    if (key == "VmRSS:") {
      status >> kib;
      break;
    }
    status.ignore(4096, '\n');
  }
  return kib * 1024.0;
}

double PeakResidentBytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) * 1024.0;  // Linux reports KiB
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc % 2 != 0) {
    std::cerr << "usage: bench_load_model MODEL_DIR [--device cpu|cuda] "
                 "[--dtype auto|float32|bfloat16]\n";
    return 1;
  }
  std::string device_name = "cpu", dtype = "auto";
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--device") {
      device_name = argv[i + 1];
    } else if (flag == "--dtype") {
      dtype = argv[i + 1];
    } else {
      std::cerr << "error: unknown flag " << flag << "\n";
      return 1;
    }
  }
  try {
    tune::PluginHost host;
    host.Load({tune::BuiltinPluginDir()});
    const c10::Device device(device_name);
    if (device.is_cuda()) torch::empty({1}, device);  // the CUDA context is not the loader's cost
    tune::Options options =
        tune::PluginHost::DefaultOptions(host.Require(tune::PluginKind::kModel, "llama"));
    options.Set("dtype", dtype);
    const double baseline = ResidentBytes();
    const auto start = std::chrono::steady_clock::now();
    const auto model = host.LoadModel("llama", argv[1], options, device);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double parameter_bytes = 0;
    for (const at::Tensor& p : model->module().parameters()) {
      parameter_bytes += static_cast<double>(p.numel() * p.element_size());
    }
    std::cout << "{\"impl\": \"tune\", \"device\": \"" << device.str() << "\", \"dtype\": \""
              << dtype << "\", \"parameters\": " << model->Describe().num_parameters
              << ", \"parameter_mib\": " << MiB(parameter_bytes)
              << ", \"baseline_rss_mib\": " << MiB(baseline)
              << ", \"peak_rss_mib\": " << MiB(PeakResidentBytes())
              << ", \"after_rss_mib\": " << MiB(ResidentBytes()) << ", \"seconds\": " << seconds
              << ", \"peak_gpu_mib\": " << MiB(static_cast<double>(tune::PeakCudaMemoryBytes()))
              << "}\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
