// Forward-pass throughput of the llama model plugin, loaded through the plugin host as tune loads
// it. Prints one JSON line; bench/llama_forward.sh runs it against the Python eager peer.
//
//   bench_llama_forward MODEL_DIR [--seq T] [--iters N] [--threads K]
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

#include "plugin_host/plugin_host.h"
#include "runtime/threads.h"
#include "tune/model.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_llama_forward MODEL_DIR [--seq T] [--iters N] [--threads K]\n";
    return 1;
  }
  int64_t seq = 128, iters = 20, threads = 2;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int64_t value = std::atoll(argv[i + 1]);
    if (flag == "--seq")
      seq = value;
    else if (flag == "--iters")
      iters = value;
    else if (flag == "--threads")
      threads = value;
    else {
      std::cerr << "error: unknown flag " << flag << "\n";
      return 1;
    }
  }
  tune::SetComputeThreads(threads);
  try {
    tune::PluginHost host;
    host.Load({tune::BuiltinPluginDir()});
    const auto& plugin = host.Require(tune::PluginKind::kModel, "llama");
    const auto model = host.LoadModel("llama", argv[1], tune::PluginHost::DefaultOptions(plugin));
    const tune::ModelDescription description = model->Describe();
    torch::NoGradGuard no_grad;
    torch::manual_seed(0);
    const torch::Tensor ids = torch::randint(3, description.vocab_size, {1, seq}, torch::kLong);
    for (int i = 0; i < 3; ++i) model->Forward(ids, nullptr);  // warm-up
    const auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < iters; ++i) model->Forward(ids, nullptr);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "{\"impl\": \"tune\", \"parameters\": " << description.num_parameters
              << ", \"seq\": " << seq << ", \"threads\": " << threads
              << ", \"tokens_per_second\": " << static_cast<double>(seq * iters) / seconds << "}\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
