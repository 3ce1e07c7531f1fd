#include "nf4/nf4.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace tune::kernels {

const std::array<float, 256>& DynamicCode8() {
  // For exponent e = 0..6: the midpoints of linspace(0.1, 1, 2^e + 1), times 10^(e - 6), with
  // both signs; then 0 and 1. 2 * (1 + 2 + ... + 64) + 2 = 256 values.
  static const std::array<float, 256> code = [] {
    std::vector<double> values;
    for (int e = 0; e < 7; ++e) {
      const int points = (1 << e) + 1;
      const double step = 0.9 / (points - 1);
      for (int i = 0; i + 1 < points; ++i) {
        const double mean = (0.1 + step * i + 0.1 + step * (i + 1)) / 2.0;
        values.push_back(std::pow(10.0, e - 6) * mean);
        values.push_back(-std::pow(10.0, e - 6) * mean);
      }
    }
    values.push_back(0.0);
    values.push_back(1.0);
    std::sort(values.begin(), values.end());
    std::array<float, 256> table{};
    for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<float>(values[i]);
    return table;
  }();
  return code;
}

Nf4Sizes::Nf4Sizes(int64_t n)
    : values(n),
      code_bytes((n + 1) / 2),
      blocks((n + kNf4Block - 1) / kNf4Block),
      absmax_blocks((blocks + kAbsmaxBlock - 1) / kAbsmaxBlock) {}

int64_t Nf4Sizes::StorageBytes(bool double_quant) const {
  if (!double_quant) return code_bytes + 4 * blocks;
  return code_bytes + blocks + 4 * absmax_blocks + 4;
}

uint8_t Nf4Index(float x) {
  // The first code whose midpoint with the next is not below x: x above a midpoint goes up.
  uint8_t index = 0;
  while (index < 15 && x > (kNf4Code[index] + kNf4Code[index + 1]) * 0.5f) ++index;
  return index;
}

namespace {

// The index of the value of `code` (ascending) nearest to x; ties go to the lower one.
template <size_t N>
uint8_t NearestIndex(const std::array<float, N>& code, float x) {
  const auto upper = std::lower_bound(code.begin(), code.end(), x);
  if (upper == code.begin()) return 0;
  if (upper == code.end()) return static_cast<uint8_t>(N - 1);
  const auto lower = upper - 1;
  return static_cast<uint8_t>((x - *lower <= *upper - x ? lower : upper) - code.begin());
}

}  // namespace

void QuantizeNf4(const float* x, int64_t n, uint8_t* codes, float* absmax) {
  std::fill(codes, codes + Nf4Sizes(n).code_bytes, uint8_t{0});
  for (int64_t block = 0; block * kNf4Block < n; ++block) {
    const int64_t begin = block * kNf4Block;
    const int64_t end = std::min(n, begin + kNf4Block);
    float largest = 0.0f;
    for (int64_t i = begin; i < end; ++i) largest = std::max(largest, std::fabs(x[i]));
    absmax[block] = largest;
    const float inverse = largest > 0.0f ? 1.0f / largest : 0.0f;
    for (int64_t i = begin; i < end; ++i) {
      const uint8_t index = Nf4Index(x[i] * inverse);
      codes[i / 2] |= static_cast<uint8_t>(i % 2 == 0 ? index << 4 : index);
    }
  }
}

void DequantizeNf4(const uint8_t* codes, const float* absmax, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t index = i % 2 == 0 ? codes[i / 2] >> 4 : codes[i / 2] & 0x0F;
    out[i] = kNf4Code[index] * absmax[i / kNf4Block];
  }
}

void QuantizeAbsmax(const float* absmax, int64_t blocks, uint8_t* quantized, float* absmax2,
                    float* offset) {
  double sum = 0.0;
  for (int64_t i = 0; i < blocks; ++i) sum += absmax[i];
  *offset = blocks > 0 ? static_cast<float>(sum / static_cast<double>(blocks)) : 0.0f;
  const std::array<float, 256>& code = DynamicCode8();
  for (int64_t block = 0; block * kAbsmaxBlock < blocks; ++block) {
    const int64_t begin = block * kAbsmaxBlock;
    const int64_t end = std::min(blocks, begin + kAbsmaxBlock);
    float largest = 0.0f;
    for (int64_t i = begin; i < end; ++i)
      largest = std::max(largest, std::fabs(absmax[i] - *offset));
    absmax2[block] = largest;
    const float inverse = largest > 0.0f ? 1.0f / largest : 0.0f;
    for (int64_t i = begin; i < end; ++i) {
      quantized[i] = NearestIndex(code, (absmax[i] - *offset) * inverse);
    }
  }
}

void DequantizeAbsmax(const uint8_t* quantized, const float* absmax2, float offset, int64_t blocks,
                      float* absmax) {
  const std::array<float, 256>& code = DynamicCode8();
  for (int64_t i = 0; i < blocks; ++i) {
    absmax[i] = code[quantized[i]] * absmax2[i / kAbsmaxBlock] + offset;
  }
}

void Nf4Matmul(const float* x, int64_t m, const uint8_t* codes, const float* absmax, int64_t rows,
               int64_t cols, float* y) {
  std::vector<float> w_row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = r * cols + c;
      const uint8_t index = i % 2 == 0 ? codes[i / 2] >> 4 : codes[i / 2] & 0x0F;
      w_row[static_cast<size_t>(c)] = kNf4Code[index] * absmax[i / kNf4Block];
    }
    for (int64_t row = 0; row < m; ++row) {
      float sum = 0.0f;
      for (int64_t c = 0; c < cols; ++c) sum += x[row * cols + c] * w_row[static_cast<size_t>(c)];
      y[row * rows + r] = sum;
    }
  }
}

void Nf4MatmulTransposed(const float* dy, int64_t m, const uint8_t* codes, const float* absmax,
                         int64_t rows, int64_t cols, float* dx) {
  std::vector<float> w(static_cast<size_t>(rows * cols));
  DequantizeNf4(codes, absmax, rows * cols, w.data());
  for (int64_t row = 0; row < m; ++row) {
    for (int64_t c = 0; c < cols; ++c) {
      float sum = 0.0f;
      for (int64_t r = 0; r < rows; ++r) {
        sum += dy[row * rows + r] * w[static_cast<size_t>(r * cols + c)];
      }
      dx[row * cols + c] = sum;
    }
  }
}

void LoraForward(const float* x, int64_t m, const float* w, int64_t out, int64_t in, const float* a,
                 const float* b, int64_t rank, float scale, float* y) {
  std::vector<float> down(static_cast<size_t>(rank));
  for (int64_t row = 0; row < m; ++row) {
    const float* xr = x + row * in;
    for (int64_t k = 0; k < rank; ++k) {
      float sum = 0.0f;
      for (int64_t c = 0; c < in; ++c) sum += xr[c] * a[k * in + c];
      down[static_cast<size_t>(k)] = sum;
    }
    for (int64_t o = 0; o < out; ++o) {
      float sum = 0.0f;
      for (int64_t c = 0; c < in; ++c) sum += xr[c] * w[o * in + c];
      float low_rank = 0.0f;
      for (int64_t k = 0; k < rank; ++k) low_rank += down[static_cast<size_t>(k)] * b[o * rank + k];
      y[row * out + o] = sum + scale * low_rank;
    }
  }
}

}  // namespace tune::kernels
