// The CUDA kernels of kernels/nf4 against their CPU references. Every test skips (counted as
// skipped) when no GPU is visible.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "nf4/nf4.h"
#include "nf4/nf4_cuda.h"

namespace tune::kernels {
namespace {

#define SKIP_WITHOUT_GPU() \
  if (cuda::DeviceCount() == 0) GTEST_SKIP() << "no GPU visible"

std::vector<float> Normal(int64_t n, uint32_t seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(n));
  for (float& v : values) v = normal(generator);
  return values;
}

// A device copy of a host vector, freed with the object.
template <typename T>
class Device {
 public:
  explicit Device(const std::vector<T>& host) : size_(host.size()) {
    EXPECT_EQ(cudaMalloc(&data_, std::max<size_t>(1, size_ * sizeof(T))), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(data_, host.data(), size_ * sizeof(T), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  explicit Device(size_t size) : Device(std::vector<T>(size)) {}
  ~Device() { cudaFree(data_); }
  T* get() const { return data_; }
  std::vector<T> Host() const {
    std::vector<T> host(size_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(host.data(), data_, size_ * sizeof(T), cudaMemcpyDeviceToHost),
              cudaSuccess);
    return host;
  }

 private:
  T* data_ = nullptr;
  size_t size_;
};

float FromBf16(uint16_t bits) {
  const uint32_t word = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &word, sizeof(value));
  return value;
}
uint16_t ToBf16(float value) {  // round to nearest even, as __float2bfloat16
  uint32_t word;
  std::memcpy(&word, &value, sizeof(word));
  return static_cast<uint16_t>((word + 0x7FFF + ((word >> 16) & 1)) >> 16);
}

struct Quantized {
  explicit Quantized(const std::vector<float>& w) : sizes(static_cast<int64_t>(w.size())) {
    codes.resize(static_cast<size_t>(sizes.code_bytes));
    absmax.resize(static_cast<size_t>(sizes.blocks));
    QuantizeNf4(w.data(), sizes.values, codes.data(), absmax.data());
    dense.resize(w.size());
    DequantizeNf4(codes.data(), absmax.data(), sizes.values, dense.data());
  }
  Nf4Sizes sizes;
  std::vector<uint8_t> codes;
  std::vector<float> absmax, dense;
};

TEST(Nf4Cuda, DequantisationMatchesTheCpuExactly) {
  SKIP_WITHOUT_GPU();
  for (const int64_t n : {int64_t{4096} * 1024, int64_t{1000}, int64_t{77}}) {
    const Quantized q(Normal(n, 1));
    const Device<uint8_t> codes(q.codes);
    const Device<float> absmax(q.absmax);
    const Device<float> out(static_cast<size_t>(n));
    const Device<uint16_t> out16(static_cast<size_t>(n));
    cuda::DequantizeNf4(codes.get(), absmax.get(), n, out.get(), nullptr);
    cuda::DequantizeNf4Bf16(codes.get(), absmax.get(), n, out16.get(), nullptr);
    EXPECT_EQ(out.Host(), q.dense) << n;
    const std::vector<uint16_t> half = out16.Host();
    for (size_t i = 0; i < half.size(); ++i) {
      ASSERT_EQ(half[i], ToBf16(q.dense[i])) << "value " << i << " of " << n;
    }
  }
}

TEST(Nf4Cuda, AbsmaxDequantisationMatchesTheCpuExactly) {
  SKIP_WITHOUT_GPU();
  std::vector<float> absmax = Normal(3000, 2);
  for (float& a : absmax) a = std::fabs(a);
  std::vector<uint8_t> quantized(absmax.size());
  std::vector<float> absmax2((absmax.size() + 255) / 256), cpu(absmax.size());
  float offset = 0;
  QuantizeAbsmax(absmax.data(), 3000, quantized.data(), absmax2.data(), &offset);
  DequantizeAbsmax(quantized.data(), absmax2.data(), offset, 3000, cpu.data());
  const Device<uint8_t> q(quantized);
  const Device<float> scales(absmax2), out(absmax.size());
  cuda::DequantizeAbsmax(q.get(), scales.get(), offset, 3000, out.get(), nullptr);
  EXPECT_EQ(out.Host(), cpu);
}

TEST(Nf4Cuda, FusedProductsMatchTheCpuReference) {
  SKIP_WITHOUT_GPU();
  const int64_t m = 37, rows = 200, cols = 136;
  const Quantized q(Normal(rows * cols, 3));
  const std::vector<float> x = Normal(m * cols, 4), dy = Normal(m * rows, 5);
  std::vector<float> y(static_cast<size_t>(m * rows)), dx(static_cast<size_t>(m * cols));
  Nf4Matmul(x.data(), m, q.codes.data(), q.absmax.data(), rows, cols, y.data());
  Nf4MatmulTransposed(dy.data(), m, q.codes.data(), q.absmax.data(), rows, cols, dx.data());
  const Device<uint8_t> codes(q.codes);
  const Device<float> absmax(q.absmax), x_in(x), dy_in(dy), y_out(y.size()), dx_out(dx.size());
  cuda::Nf4Matmul(x_in.get(), m, codes.get(), absmax.get(), rows, cols, y_out.get(), nullptr);
  cuda::Nf4MatmulTransposed(dy_in.get(), m, codes.get(), absmax.get(), rows, cols, dx_out.get(),
                            nullptr);
  const std::vector<float> y_gpu = y_out.Host(), dx_gpu = dx_out.Host();
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y_gpu[i], y[i], 1e-3f) << i;
  for (size_t i = 0; i < dx.size(); ++i) ASSERT_NEAR(dx_gpu[i], dx[i], 1e-3f) << i;

  // bfloat16 in and out, float32 accumulation: within bfloat16's rounding of the result and of
  // the inputs (about 2^-8 relative each).
  std::vector<uint16_t> x16(x.size()), dy16(dy.size());
  std::vector<float> x_rounded(x.size()), dy_rounded(dy.size());
  for (size_t i = 0; i < x.size(); ++i) x_rounded[i] = FromBf16(x16[i] = ToBf16(x[i]));
  for (size_t i = 0; i < dy.size(); ++i) dy_rounded[i] = FromBf16(dy16[i] = ToBf16(dy[i]));
  Nf4Matmul(x_rounded.data(), m, q.codes.data(), q.absmax.data(), rows, cols, y.data());
  Nf4MatmulTransposed(dy_rounded.data(), m, q.codes.data(), q.absmax.data(), rows, cols, dx.data());
  const Device<uint16_t> x16_in(x16), dy16_in(dy16), y16(y.size()), dx16(dx.size());
  cuda::Nf4MatmulBf16(x16_in.get(), m, codes.get(), absmax.get(), rows, cols, y16.get(), nullptr);
  cuda::Nf4MatmulTransposedBf16(dy16_in.get(), m, codes.get(), absmax.get(), rows, cols, dx16.get(),
                                nullptr);
  const std::vector<uint16_t> y16_gpu = y16.Host(), dx16_gpu = dx16.Host();
  for (size_t i = 0; i < y.size(); ++i) {
    ASSERT_NEAR(FromBf16(y16_gpu[i]), y[i], 1e-2f * (1.0f + std::fabs(y[i]))) << i;
  }
  for (size_t i = 0; i < dx.size(); ++i) {
    ASSERT_NEAR(FromBf16(dx16_gpu[i]), dx[i], 1e-2f * (1.0f + std::fabs(dx[i]))) << i;
  }
}

TEST(Nf4Cuda, FusedLoraForwardMatchesTheCpuReference) {
  SKIP_WITHOUT_GPU();
  const int64_t m = 65, out = 96, in = 80, rank = 8;
  const std::vector<float> x = Normal(m * in, 6), w = Normal(out * in, 7), a = Normal(rank * in, 8),
                           b = Normal(out * rank, 9);
  std::vector<float> y(static_cast<size_t>(m * out));
  LoraForward(x.data(), m, w.data(), out, in, a.data(), b.data(), rank, 2.0f, y.data());
  const Device<float> dx(x), dw(w), da(a), db(b), dy(y.size());
  cuda::LoraForward(dx.get(), m, dw.get(), out, in, da.get(), db.get(), rank, 2.0f, dy.get(),
                    nullptr);
  const std::vector<float> gpu = dy.Host();
  for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(gpu[i], y[i], 1e-3f * (1 + std::fabs(y[i])));
}

}  // namespace
}  // namespace tune::kernels
