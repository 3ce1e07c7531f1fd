#include "nf4/nf4_cuda.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <string>

#include "nf4/nf4.h"

namespace tune::kernels::cuda {
namespace {

__constant__ float kCode[16] = {TUNE_NF4_CODE_VALUES};
__constant__ float kCode8[256];  // DynamicCode8(), copied in before the first use

void Check(cudaError_t error, const char* what) {
  if (error != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": CUDA error: " + cudaGetErrorString(error));
  }
}

cudaStream_t Stream(void* stream) { return static_cast<cudaStream_t>(stream); }

__device__ __forceinline__ float ToFloat(float v) { return v; }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T>
__device__ __forceinline__ T FromFloat(float v);
template <>
__device__ __forceinline__ float FromFloat<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16(v);
}

// Value i of an NF4 tensor (nf4.h's layout).
__device__ __forceinline__ float Nf4At(const uint8_t* codes, const float* absmax, int64_t i) {
  const uint8_t byte = codes[i >> 1];
  return kCode[(i & 1) ? (byte & 0x0F) : (byte >> 4)] * absmax[i / kNf4Block];
}

int Blocks(int64_t work, int threads) {
  return static_cast<int>(std::min<int64_t>((work + threads - 1) / threads, int64_t{1} << 30));
}

// ---- Dequantisation ----

// Eight values per thread from one 32-bit load (n % 8 == 0: the eight share a block of 64).
template <typename T>
__global__ void DequantizeEightKernel(const uint32_t* codes, const float* absmax, int64_t groups,
                                      T* out) {
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const uint32_t word = codes[g];
    const float scale = absmax[(g * 8) / kNf4Block];
    alignas(16) T values[8];
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      const uint32_t byte = (word >> (8 * b)) & 0xFF;  // little-endian: byte b of the four
      values[2 * b] = FromFloat<T>(kCode[byte >> 4] * scale);
      values[2 * b + 1] = FromFloat<T>(kCode[byte & 0x0F] * scale);
    }
    // 32 bytes (float) or 16 bytes (bfloat16) per thread, in 16-byte stores.
    const uint4* source = reinterpret_cast<const uint4*>(values);
    uint4* target = reinterpret_cast<uint4*>(out + g * 8);
#pragma unroll
    for (int v = 0; v < static_cast<int>(sizeof(values) / sizeof(uint4)); ++v)
      target[v] = source[v];
  }
}

template <typename T>
__global__ void DequantizeKernel(const uint8_t* codes, const float* absmax, int64_t n, T* out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = FromFloat<T>(Nf4At(codes, absmax, i));
  }
}

template <typename T>
void Dequantize(const uint8_t* codes, const float* absmax, int64_t n, T* out, void* stream) {
  if (n == 0) return;
  constexpr int kThreads = 256;
  const bool aligned =
      reinterpret_cast<uintptr_t>(codes) % 4 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0;
  if (n % 8 == 0 && aligned) {
    const int64_t groups = n / 8;
    DequantizeEightKernel<T><<<Blocks(groups, kThreads), kThreads, 0, Stream(stream)>>>(
        reinterpret_cast<const uint32_t*>(codes), absmax, groups, out);
  } else {
    DequantizeKernel<T>
        <<<Blocks(n, kThreads), kThreads, 0, Stream(stream)>>>(codes, absmax, n, out);
  }
  Check(cudaGetLastError(), "DequantizeNf4");
}

__global__ void DequantizeAbsmaxKernel(const uint8_t* quantized, const float* absmax2, float offset,
                                       int64_t blocks, float* absmax) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < blocks;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    absmax[i] = kCode8[quantized[i]] * absmax2[i / kAbsmaxBlock] + offset;
  }
}

// ---- Tiled products: C[m, n] = A[m, k] B^T, B read through a loader ----

constexpr int kTile = 64;   // C tile: kTile x kTile, 4 x 4 values per thread
constexpr int kDepth = 16;  // k per step
constexpr int kThreads = 256;

// B(j, kk) = W[j, kk]: W [n, k] row-major, NF4 (the forward's W^T).
struct Nf4Rows {
  const uint8_t* codes;
  const float* absmax;
  int64_t k;
  static constexpr bool kAlongK = true;  // neighbouring kk are neighbours in memory
  __device__ float operator()(int64_t j, int64_t kk) const {
    return Nf4At(codes, absmax, j * k + kk);
  }
};
// B(j, kk) = W[kk, j]: W [k, n] row-major, NF4 (the backward's W).
struct Nf4Cols {
  const uint8_t* codes;
  const float* absmax;
  int64_t n;
  static constexpr bool kAlongK = false;
  __device__ float operator()(int64_t j, int64_t kk) const {
    return Nf4At(codes, absmax, kk * n + j);
  }
};
// B(j, kk) = W[j, kk], float32 row-major.
struct DenseRows {
  const float* w;
  int64_t k;
  static constexpr bool kAlongK = true;
  __device__ float operator()(int64_t j, int64_t kk) const { return w[j * k + kk]; }
};

struct Plain {
  __device__ float operator()(int64_t, int64_t, float value) const { return value; }
};
// Adds scale * down[i, :] . b[j, :] (LoRA's low-rank term) to each value.
struct LowRank {
  const float* down;  // [m, rank]
  const float* b;     // [n, rank]
  int64_t rank;
  float scale;
  __device__ float operator()(int64_t i, int64_t j, float value) const {
    float sum = 0.0f;
    for (int64_t r = 0; r < rank; ++r) sum += down[i * rank + r] * b[j * rank + r];
    return value + scale * sum;
  }
};

template <typename T, typename LoadB, typename Epilogue>
__global__ void __launch_bounds__(kThreads)
    GemmKernel(const T* a, int64_t m, int64_t n, int64_t k, LoadB load_b, Epilogue epilogue, T* c) {
  __shared__ float a_tile[kDepth][kTile + 1];
  __shared__ float b_tile[kDepth][kTile + 1];
  const int tx = threadIdx.x % 16;
  const int ty = threadIdx.x / 16;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * kTile;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kTile;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < k; k0 += kDepth) {
    for (int e = threadIdx.x; e < kTile * kDepth; e += kThreads) {
      const int i = e / kDepth, kk = e % kDepth;  // neighbouring threads read along A's rows
      const int64_t row = row0 + i, depth = k0 + kk;
      a_tile[kk][i] = row < m && depth < k ? ToFloat(a[row * k + depth]) : 0.0f;
    }
    for (int e = threadIdx.x; e < kTile * kDepth; e += kThreads) {
      // Neighbouring threads read neighbouring bytes of the weight in either orientation.
      const int j = LoadB::kAlongK ? e / kDepth : e % kTile;
      const int kk = LoadB::kAlongK ? e % kDepth : e / kTile;
      const int64_t col = col0 + j, depth = k0 + kk;
      b_tile[kk][j] = col < n && depth < k ? load_b(col, depth) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < kDepth; ++kk) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = a_tile[kk][ty * 4 + i];
#pragma unroll
      for (int j = 0; j < 4; ++j) bv[j] = b_tile[kk][tx * 4 + j];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t row = row0 + ty * 4 + i, col = col0 + tx * 4 + j;
      if (row < m && col < n) c[row * n + col] = FromFloat<T>(epilogue(row, col, acc[i][j]));
    }
  }
}

template <typename T, typename LoadB, typename Epilogue>
void Gemm(const T* a, int64_t m, int64_t n, int64_t k, LoadB load_b, Epilogue epilogue, T* c,
          void* stream, const char* what) {
  if (m == 0 || n == 0) return;
  const int64_t tiles_n = (n + kTile - 1) / kTile, tiles_m = (m + kTile - 1) / kTile;
  if (tiles_m > 65535) throw std::runtime_error(std::string(what) + ": more than 4M rows");
  const dim3 grid(static_cast<unsigned>(tiles_n), static_cast<unsigned>(tiles_m));
  GemmKernel<T, LoadB, Epilogue>
      <<<grid, kThreads, 0, Stream(stream)>>>(a, m, n, k, load_b, epilogue, c);
  Check(cudaGetLastError(), what);
}

const __nv_bfloat16* Bf16(const uint16_t* p) { return reinterpret_cast<const __nv_bfloat16*>(p); }
__nv_bfloat16* Bf16(uint16_t* p) { return reinterpret_cast<__nv_bfloat16*>(p); }

}  // namespace

int DeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
}

void DequantizeNf4(const uint8_t* codes, const float* absmax, int64_t n, float* out, void* stream) {
  Dequantize(codes, absmax, n, out, stream);
}

void DequantizeNf4Bf16(const uint8_t* codes, const float* absmax, int64_t n, uint16_t* out,
                       void* stream) {
  Dequantize(codes, absmax, n, Bf16(out), stream);
}

void DequantizeAbsmax(const uint8_t* quantized, const float* absmax2, float offset, int64_t blocks,
                      float* absmax, void* stream) {
  static std::once_flag copied;
  std::call_once(copied, [] {
    Check(cudaMemcpyToSymbol(kCode8, DynamicCode8().data(), sizeof(float) * 256),
          "DequantizeAbsmax");
  });
  if (blocks == 0) return;
  DequantizeAbsmaxKernel<<<Blocks(blocks, 256), 256, 0, Stream(stream)>>>(quantized, absmax2,
                                                                          offset, blocks, absmax);
  Check(cudaGetLastError(), "DequantizeAbsmax");
}

void Nf4Matmul(const float* x, int64_t m, const uint8_t* codes, const float* absmax, int64_t rows,
               int64_t cols, float* y, void* stream) {
  Gemm(x, m, rows, cols, Nf4Rows{codes, absmax, cols}, Plain{}, y, stream, "Nf4Matmul");
}

void Nf4MatmulBf16(const uint16_t* x, int64_t m, const uint8_t* codes, const float* absmax,
                   int64_t rows, int64_t cols, uint16_t* y, void* stream) {
  Gemm(Bf16(x), m, rows, cols, Nf4Rows{codes, absmax, cols}, Plain{}, Bf16(y), stream,
       "Nf4MatmulBf16");
}

void Nf4MatmulTransposed(const float* dy, int64_t m, const uint8_t* codes, const float* absmax,
                         int64_t rows, int64_t cols, float* dx, void* stream) {
  Gemm(dy, m, cols, rows, Nf4Cols{codes, absmax, cols}, Plain{}, dx, stream, "Nf4MatmulTransposed");
}

void Nf4MatmulTransposedBf16(const uint16_t* dy, int64_t m, const uint8_t* codes,
                             const float* absmax, int64_t rows, int64_t cols, uint16_t* dx,
                             void* stream) {
  Gemm(Bf16(dy), m, cols, rows, Nf4Cols{codes, absmax, cols}, Plain{}, Bf16(dx), stream,
       "Nf4MatmulTransposedBf16");
}

void LoraForward(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* a,
                 const float* b, int64_t rank, float scale, float* y, void* stream) {
  if (m == 0 || out == 0) return;
  float* down = nullptr;  // x A^T, [m, rank]
  Check(cudaMallocAsync(&down, sizeof(float) * static_cast<size_t>(m * rank), Stream(stream)),
        "LoraForward");
  Gemm(x, m, rank, in, DenseRows{a, in}, Plain{}, down, stream, "LoraForward");
  Gemm(x, m, out, in, DenseRows{w, in}, LowRank{down, b, rank, scale}, y, stream, "LoraForward");
  Check(cudaFreeAsync(down, Stream(stream)), "LoraForward");
}

}  // namespace tune::kernels::cuda
