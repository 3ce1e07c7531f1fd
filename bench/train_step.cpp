// Training-step throughput of tune's trainer step (core/train/step.h) with the lora, qlora or full
// adapter and adamw, loaded through the plugin host as `tune train` loads them. Prints one JSON
// line with tokens/s, the process's peak resident memory and (on a GPU) peak GPU memory, and the
// memory held once the adapter is attached (resident, and on a GPU allocated): the weights;
// bench/train_step.sh runs it against the Python eager peer on the CPU, bench/gpu_train_step.sh
// against transformers + PEFT on a GPU.
//
//   bench_train_step MODEL_DIR [--method lora|qlora|full] [--rank R] [--batch B] [--seq T]
//                    [--iters N] [--threads K] [--device cpu|cuda] [--dtype auto|float32|bfloat16]
//                    [--checkpointing 0|1]
#include <malloc.h>
#include <sys/resource.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "plugin_host/plugin_host.h"
#include "runtime/runtime_info.h"
#include "runtime/threads.h"
#include "train/step.h"
#include "tune/adapter.h"
#include "tune/model.h"
#include "tune/optimizer.h"

// The process's resident memory now (/proc/self/statm), in MiB.
double ResidentMib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1048576.0;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr
        << "usage: bench_train_step MODEL_DIR [--method lora|qlora|full] [--rank R] [--batch B] "
           "[--seq T] [--iters N] [--threads K] [--device cpu|cuda] "
           "[--dtype auto|float32|bfloat16] [--checkpointing 0|1]\n";
    return 1;
  }
  std::string method = "lora", device_name = "cpu", dtype = "auto";
  int64_t rank = 16, batch = 16, seq = 64, iters = 30, threads = 2, checkpointing = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int64_t value = std::atoll(argv[i + 1]);
    if (flag == "--method") {
      method = argv[i + 1];
    } else if (flag == "--rank") {
      rank = value;
    } else if (flag == "--batch") {
      batch = value;
    } else if (flag == "--seq") {
      seq = value;
    } else if (flag == "--iters") {
      iters = value;
    } else if (flag == "--threads") {
      threads = value;
    } else if (flag == "--device") {
      device_name = argv[i + 1];
    } else if (flag == "--dtype") {
      dtype = argv[i + 1];
    } else if (flag == "--checkpointing") {
      checkpointing = value;
    } else {
      std::cerr << "error: unknown flag " << flag << "\n";
      return 1;
    }
  }
  tune::SetComputeThreads(threads);
  try {
    tune::PluginHost host;
    host.Load({tune::BuiltinPluginDir()});
    const c10::Device device(device_name);
    tune::Options model_options =
        tune::PluginHost::DefaultOptions(host.Require(tune::PluginKind::kModel, "llama"));
    model_options.Set("dtype", dtype);
    const auto model = host.LoadModel("llama", argv[1], model_options, device);
    model->SetGradientCheckpointing(checkpointing != 0);
    tune::Options adapter_options =
        tune::PluginHost::DefaultOptions(host.Require(tune::PluginKind::kAdapter, method));
    if (method == "lora" || method == "qlora") {
      adapter_options.Set("rank", rank);
      adapter_options.Set("alpha", static_cast<double>(2 * rank));
      adapter_options.Set("targets", std::vector<std::string>{"all-linear"});
    }
    torch::manual_seed(0);
    const auto adapter = host.CreateAdapter(method, adapter_options);
    adapter->Attach(*model, argv[1]);
    adapter->SetTraining(true);
    malloc_trim(0);  // what qlora released goes back to the system before it is measured
    const double attached_rss_mib = ResidentMib();
    const double attached_gpu_mib = static_cast<double>(tune::CudaMemoryBytes()) / 1048576.0;
    std::vector<at::Tensor> parameters;
    for (const auto& [name, tensor] : adapter->TrainableParameters()) parameters.push_back(tensor);
    const auto optimizer = host.CreateOptimizer(
        "adamw", parameters, 0.0,
        tune::PluginHost::DefaultOptions(host.Require(tune::PluginKind::kOptimizer, "adamw")));

    // Random ids; the first half of each row is prompt (masked), as the peer does.
    const int64_t vocab = model->Describe().vocab_size;
    tune::Batch step_batch;
    step_batch.inputs = torch::randint(3, vocab, {batch, seq}, torch::kLong);
    step_batch.targets = torch::randint(3, vocab, {batch, seq}, torch::kLong);
    step_batch.targets.narrow(1, 0, seq / 2).fill_(-100);
    step_batch.tokens = batch * seq;
    step_batch.target_tokens = batch * (seq - seq / 2);
    const std::vector<tune::Batch> batches = {step_batch};
    // Each step is read back as the trainer reads it, so the clock sees finished device work.
    auto step = [&] {
      tune::ReadStepNumbers(
          tune::TrainStep(*model, parameters, *optimizer, batches, 1e-4, 1.0, device));
    };
    for (int i = 0; i < 3; ++i) step();  // warm-up
    const auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < iters; ++i) step();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::cout << "{\"impl\": \"tune\", \"method\": \"" << method << "\", \"batch\": " << batch
              << ", \"seq\": " << seq << ", \"threads\": " << threads
              << ", \"tokens_per_second\": " << static_cast<double>(batch * seq * iters) / seconds
              << ", \"peak_rss_mib\": " << static_cast<double>(usage.ru_maxrss) / 1024.0
              << ", \"device\": \"" << device.str() << "\", \"checkpointing\": " << checkpointing
              << ", \"parameters\": " << model->Describe().num_parameters << ", \"peak_gpu_mib\": "
              << static_cast<double>(tune::PeakCudaMemoryBytes()) / 1048576.0
              << ", \"attached_rss_mib\": " << attached_rss_mib
              << ", \"attached_gpu_mib\": " << attached_gpu_mib << "}\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
