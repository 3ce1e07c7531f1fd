// NF4: 4-bit NormalFloat quantisation of frozen weights (Dettmers et al. 2023, "QLoRA"), in
// bitsandbytes' layout, so sizes and errors compare with it.
//
// Layout of n values (a weight read flat, row-major):
//   - Blocks of kNf4Block = 64 values; the last block holds the remainder (n need not be a
//     multiple of 64: nothing is padded but the last byte).
//   - Each block keeps absmax = max |x| (float32). Each value keeps the index (0..15) of the
//     kNf4Code value nearest to x / absmax; ties go to the lower code, as bitsandbytes'
//     comparisons against the midpoints do. A block of zeros has absmax 0 and code 7 (0.0).
//   - Two indices per byte, the earlier value in the high nibble: byte i holds values 2i (high)
//     and 2i + 1 (low). An odd n leaves the last low nibble 0.
//   - Double quantisation stores the absmax values in 8 bits: their mean (`offset`) is
//     subtracted, then blocks of kAbsmaxBlock = 256 of them are quantised to the nearest value of
//     bitsandbytes' signed dynamic 8-bit code (DynamicCode8) against each block's own float32
//     absmax (`absmax2`). absmax is recovered as DynamicCode8()[q] * absmax2[block] + offset.
//
// Storage (Nf4Sizes::StorageBytes): 4 bits per value plus 32 bits per 64 values (4.5 bits), or
// with double quantisation 8 bits per 64 values and 32 bits per 16,384 values plus one offset
// (about 4.127 bits).
//
// Everything here is the CPU reference: plain loops over host memory, no threads, no torch.
// nf4_cuda.h has the CUDA kernels with the same contracts, and tests compare the two.
#pragma once

#include <array>
#include <cstdint>

namespace tune::kernels {

inline constexpr int64_t kNf4Block = 64;
inline constexpr int64_t kAbsmaxBlock = 256;

// The 16 NF4 values (quantiles of N(0, 1) scaled to [-1, 1], with an exact 0), ascending; a macro
// so the CUDA kernels' constant memory is initialised from the same list.
#define TUNE_NF4_CODE_VALUES                                                                       \
  -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f, \
      -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f,                    \
      0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f,      \
      0.5626170039176941f, 0.7229568362236023f, 1.0f
inline constexpr std::array<float, 16> kNf4Code = {TUNE_NF4_CODE_VALUES};

// bitsandbytes' signed dynamic 8-bit code (create_dynamic_map(signed=True)): 256 values in
// [-1, 1], ascending, dense near 0. Computed once, in double, then rounded to float.
const std::array<float, 256>& DynamicCode8();

// The sizes of the arrays that hold n values.
struct Nf4Sizes {
  explicit Nf4Sizes(int64_t n);
  int64_t values;         // n
  int64_t code_bytes;     // ceil(n / 2)
  int64_t blocks;         // ceil(n / 64): one absmax (or one 8-bit absmax) each
  int64_t absmax_blocks;  // ceil(blocks / 256): one absmax2 each (double quantisation)
  // Bytes of the whole quantised tensor: codes and float absmax, or codes, 8-bit absmax,
  // float absmax2 and the float offset.
  int64_t StorageBytes(bool double_quant) const;
};

// The index of the kNf4Code value nearest to `x` (x in [-1, 1]).
uint8_t Nf4Index(float x);

// Quantises x[0, n) into codes[Nf4Sizes(n).code_bytes] and absmax[Nf4Sizes(n).blocks].
void QuantizeNf4(const float* x, int64_t n, uint8_t* codes, float* absmax);
// Writes out[0, n) = kNf4Code[index] * absmax[block] for every value.
void DequantizeNf4(const uint8_t* codes, const float* absmax, int64_t n, float* out);

// Double quantisation of absmax[0, blocks): quantized[blocks], absmax2[ceil(blocks / 256)] and
// the mean subtracted first (*offset).
void QuantizeAbsmax(const float* absmax, int64_t blocks, uint8_t* quantized, float* absmax2,
                    float* offset);
void DequantizeAbsmax(const uint8_t* quantized, const float* absmax2, float offset, int64_t blocks,
                      float* absmax);

// The products a QLoRA layer needs of an NF4 weight W [rows, cols] (row-major, as above) and
// float32 activations, accumulated in float32 (the CUDA kernels' reference):
//   Nf4Matmul:           y[m, rows]  = x[m, cols] W^T      (the forward)
//   Nf4MatmulTransposed: dx[m, cols] = dy[m, rows] W       (the input gradient of the backward)
void Nf4Matmul(const float* x, int64_t m, const uint8_t* codes, const float* absmax, int64_t rows,
               int64_t cols, float* y);
void Nf4MatmulTransposed(const float* dy, int64_t m, const uint8_t* codes, const float* absmax,
                         int64_t rows, int64_t cols, float* dx);

// A LoRA layer's forward in one pass: y[m, out] = x W^T + scale * (x A^T) B^T with
// x [m, in], W [out, in], A [rank, in], B [out, rank], all float32.
void LoraForward(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* a,
                 const float* b, int64_t rank, float scale, float* y);

}  // namespace tune::kernels
