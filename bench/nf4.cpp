// NF4 (kernels/nf4): the storage of a Llama's quantised linear weights, and dequantisation
// throughput against a plain copy of the same bytes on the same device (the peer: memcpy on the
// CPU, cudaMemcpy device to device on a GPU). Prints JSON lines.
//
//   bench_nf4 [--config CONFIG_JSON] [--rounds N]
//
// Without --config the shapes are TinyLlama 1.1B's (hidden 2048, intermediate 5632, 22 layers,
// 32 heads, 4 KV heads). Throughput counts bytes read plus bytes written, for both.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nf4/nf4.h"
#if TUNE_KERNELS_CUDA
#include <cuda_runtime.h>

#include "nf4/nf4_cuda.h"
#endif

namespace {

using tune::kernels::Nf4Sizes;
using Clock = std::chrono::steady_clock;

struct Shape {
  int64_t hidden = 2048, intermediate = 5632, layers = 22, heads = 32, kv_heads = 4;
};

// [out, in] of every linear layer in the decoder (what qlora quantises).
std::vector<std::pair<int64_t, int64_t>> LinearShapes(const Shape& s) {
  const int64_t head_dim = s.hidden / s.heads;
  std::vector<std::pair<int64_t, int64_t>> shapes;
  for (int64_t layer = 0; layer < s.layers; ++layer) {
    shapes.insert(shapes.end(), {{s.hidden, s.hidden},
                                 {s.kv_heads * head_dim, s.hidden},
                                 {s.kv_heads * head_dim, s.hidden},
                                 {s.hidden, s.hidden},
                                 {s.intermediate, s.hidden},
                                 {s.intermediate, s.hidden},
                                 {s.hidden, s.intermediate}});
  }
  return shapes;
}

void Storage(const Shape& shape, const std::string& model) {
  int64_t parameters = 0, plain = 0, doubled = 0;
  for (const auto& [out, in] : LinearShapes(shape)) {
    const Nf4Sizes sizes(out * in);
    parameters += out * in;
    plain += sizes.StorageBytes(false);
    doubled += sizes.StorageBytes(true);
  }
  std::cout << nlohmann::json{{"what", "storage of the quantised linear weights"},
                              {"model", model},
                              {"parameters", parameters},
                              {"bits_per_parameter", 8.0 * plain / parameters},
                              {"bits_per_parameter_double_quant", 8.0 * doubled / parameters},
                              {"mib_double_quant", doubled / 1048576.0},
                              {"mib_bfloat16", 2.0 * parameters / 1048576.0}}
                   .dump()
            << "\n";
}

template <typename F>
double MedianSeconds(int rounds, F&& run) {
  std::vector<double> seconds;
  for (int i = 0; i < rounds; ++i) {
    const auto start = Clock::now();
    run();
    seconds.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return seconds[seconds.size() / 2];
}

void CpuThroughput(int64_t rows, int64_t cols, int rounds) {
  const int64_t n = rows * cols;
  const Nf4Sizes sizes(n);
  std::vector<float> w(static_cast<size_t>(n)), out(w.size()), copy(w.size());
  std::mt19937 generator(0);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (float& v : w) v = normal(generator);
  std::vector<uint8_t> codes(static_cast<size_t>(sizes.code_bytes));
  std::vector<float> absmax(static_cast<size_t>(sizes.blocks));
  const double quantize = MedianSeconds(
      rounds, [&] { tune::kernels::QuantizeNf4(w.data(), n, codes.data(), absmax.data()); });
  const double dequantize = MedianSeconds(
      rounds, [&] { tune::kernels::DequantizeNf4(codes.data(), absmax.data(), n, out.data()); });
  const double memcpy_seconds =
      MedianSeconds(rounds, [&] { std::memcpy(copy.data(), out.data(), out.size() * 4); });
  const double moved = static_cast<double>(sizes.code_bytes + 4 * sizes.blocks + 4 * n);
  std::cout << nlohmann::json{{"what", "CPU dequantise to float32, one thread (reference)"},
                              {"shape", {rows, cols}},
                              {"quantize_ms", quantize * 1e3},
                              {"dequantize_gb_per_s", moved / dequantize / 1e9},
                              {"memcpy_gb_per_s", 8.0 * n / memcpy_seconds / 1e9},
                              {"ratio_to_memcpy",
                               (moved / dequantize) / (8.0 * n / memcpy_seconds)}}
                   .dump()
            << "\n";
}

#if TUNE_KERNELS_CUDA
void Check(cudaError_t error) {
  if (error != cudaSuccess) throw std::runtime_error(cudaGetErrorString(error));
}

// Milliseconds of `run` on the default stream, median of `rounds` after one warm-up.
template <typename F>
double GpuMs(int rounds, F&& run) {
  cudaEvent_t start, stop;
  Check(cudaEventCreate(&start));
  Check(cudaEventCreate(&stop));
  run();
  std::vector<float> times;
  for (int i = 0; i < rounds; ++i) {
    Check(cudaEventRecord(start));
    run();
    Check(cudaEventRecord(stop));
    Check(cudaEventSynchronize(stop));
    float ms = 0;
    Check(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void GpuThroughput(int rounds) {
  if (tune::kernels::cuda::DeviceCount() == 0) {
    std::cout << nlohmann::json{{"what", "GPU dequantise"}, {"skipped", "no GPU visible"}}.dump()
              << "\n";
    return;
  }
  const int64_t n = int64_t{1} << 28;  // 256 M values: 128 MiB of codes, 512 MiB of bfloat16
  const Nf4Sizes sizes(n);
  uint8_t* codes = nullptr;
  float* absmax = nullptr;
  uint16_t* out = nullptr;
  uint16_t* copy = nullptr;
  Check(cudaMalloc(&codes, static_cast<size_t>(sizes.code_bytes)));
  Check(cudaMalloc(&absmax, static_cast<size_t>(4 * sizes.blocks)));
  Check(cudaMalloc(&out, static_cast<size_t>(2 * n)));
  Check(cudaMalloc(&copy, static_cast<size_t>(2 * n)));
  Check(cudaMemset(codes, 0x5A, static_cast<size_t>(sizes.code_bytes)));
  Check(cudaMemset(absmax, 0, static_cast<size_t>(4 * sizes.blocks)));
  const double dequantize_ms = GpuMs(
      rounds, [&] { tune::kernels::cuda::DequantizeNf4Bf16(codes, absmax, n, out, nullptr); });
  const double copy_ms = GpuMs(rounds, [&] {
    Check(cudaMemcpyAsync(copy, out, static_cast<size_t>(2 * n), cudaMemcpyDeviceToDevice));
  });
  const double moved = static_cast<double>(sizes.code_bytes + 4 * sizes.blocks + 2 * n);
  const double dequantize_gbs = moved / (dequantize_ms * 1e-3) / 1e9;
  const double copy_gbs = 4.0 * n / (copy_ms * 1e-3) / 1e9;
  cudaDeviceProp properties{};
  Check(cudaGetDeviceProperties(&properties, 0));
  std::cout << nlohmann::json{{"what", "GPU dequantise to bfloat16"},
                              {"device", properties.name},
                              {"values", n},
                              {"dequantize_gb_per_s", dequantize_gbs},
                              {"device_copy_gb_per_s", copy_gbs},
                              {"ratio_to_device_copy", dequantize_gbs / copy_gbs}}
                   .dump()
            << "\n";
  cudaFree(codes);
  cudaFree(absmax);
  cudaFree(out);
  cudaFree(copy);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  Shape shape;
  std::string model = "TinyLlama 1.1B shape";
  int rounds = 5;
  try {
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::string flag = argv[i];
      if (flag == "--rounds") {
        rounds = std::stoi(argv[i + 1]);
      } else if (flag == "--config") {
        std::ifstream in(argv[i + 1]);
        const nlohmann::json config = nlohmann::json::parse(in);
        shape = {
            config.at("hidden_size").get<int64_t>(), config.at("intermediate_size").get<int64_t>(),
            config.at("num_hidden_layers").get<int64_t>(),
            config.at("num_attention_heads").get<int64_t>(),
            config.value("num_key_value_heads", config.at("num_attention_heads").get<int64_t>())};
        model = argv[i + 1];
      } else {
        std::cerr << "usage: bench_nf4 [--config CONFIG_JSON] [--rounds N]\n";
        return 1;
      }
    }
    Storage(shape, model);
    CpuThroughput(shape.intermediate, shape.hidden, rounds);
#if TUNE_KERNELS_CUDA
    GpuThroughput(rounds);
#endif
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
