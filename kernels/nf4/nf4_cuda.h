// CUDA kernels with the contracts of nf4.h (read it first: layout, rounding, sizes).
//
// Device: every pointer is device memory of the current device. Each call enqueues its work on
// `stream` (a cudaStream_t; nullptr is the legacy default stream) and returns without waiting.
// bfloat16 arrays are passed as uint16_t (the bits of __nv_bfloat16) so that callers need no
// CUDA headers; products accumulate in float32 whatever the input type.
// Errors: a failed launch throws std::runtime_error with CUDA's message. Faults inside a kernel
// surface at the caller's next synchronisation, as with any CUDA work.
// Built only when the CUDA toolkit is present (TUNE_KERNELS_CUDA); sm_80 and sm_90.
#pragma once

#include <cstdint>

namespace tune::kernels::cuda {

// Devices the CUDA runtime sees; 0 when there is none or no driver.
int DeviceCount();

void DequantizeNf4(const uint8_t* codes, const float* absmax, int64_t n, float* out, void* stream);
void DequantizeNf4Bf16(const uint8_t* codes, const float* absmax, int64_t n, uint16_t* out,
                       void* stream);
void DequantizeAbsmax(const uint8_t* quantized, const float* absmax2, float offset, int64_t blocks,
                      float* absmax, void* stream);

// y[m, rows] = x[m, cols] W^T and dx[m, cols] = dy[m, rows] W, W [rows, cols] in NF4, with the
// weight dequantised tile by tile in shared memory (never whole).
void Nf4Matmul(const float* x, int64_t m, const uint8_t* codes, const float* absmax, int64_t rows,
               int64_t cols, float* y, void* stream);
void Nf4MatmulBf16(const uint16_t* x, int64_t m, const uint8_t* codes, const float* absmax,
                   int64_t rows, int64_t cols, uint16_t* y, void* stream);
void Nf4MatmulTransposed(const float* dy, int64_t m, const uint8_t* codes, const float* absmax,
                         int64_t rows, int64_t cols, float* dx, void* stream);
void Nf4MatmulTransposedBf16(const uint16_t* dy, int64_t m, const uint8_t* codes,
                             const float* absmax, int64_t rows, int64_t cols, uint16_t* dx,
                             void* stream);

// y[m, out] = x W^T + scale * (x A^T) B^T, float32 (nf4.h's LoraForward).
void LoraForward(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* a,
                 const float* b, int64_t rank, float scale, float* y, void* stream);

}  // namespace tune::kernels::cuda
