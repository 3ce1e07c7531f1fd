// The CPU reference of NF4 (kernels/nf4/nf4.h): the code table, rounding, packing, double
// quantisation, sizes, and the products the CUDA kernels are compared against.
#include "nf4/nf4.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>
#include <vector>

#include "support/test_support.h"

namespace tune::kernels {
namespace {

std::vector<float> Normal(int64_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> values(static_cast<size_t>(n));
  for (float& v : values) v = normal(generator);
  return values;
}

std::vector<float> RoundTrip(const std::vector<float>& x) {
  const Nf4Sizes sizes(static_cast<int64_t>(x.size()));
  std::vector<uint8_t> codes(static_cast<size_t>(sizes.code_bytes));
  std::vector<float> absmax(static_cast<size_t>(sizes.blocks));
  QuantizeNf4(x.data(), sizes.values, codes.data(), absmax.data());
  std::vector<float> back(x.size());
  DequantizeNf4(codes.data(), absmax.data(), sizes.values, back.data());
  return back;
}

TEST(Nf4, CodeTableIsTheNormalQuantilesOfTheQloraPaper) {
  // An independent derivation (Python's statistics.NormalDist): 8 positive quantiles of
  // linspace(0.9677083, 0.5, 9), 7 negative of linspace(0.9677083, 0.5, 8), and 0, normalised.
  const auto run =
      testing::RunCommand({TUNE_PYTHON, "-c",
                           "from statistics import NormalDist as N\n"
                           "o = 0.9677083\n"
                           "lin = lambda a, b, k: [a + (b - a) * i / (k - 1) for i in range(k)]\n"
                           "v = [N().inv_cdf(p) for p in lin(o, 0.5, 9)[:-1]] + [0.0]\n"
                           "v += [-N().inv_cdf(p) for p in lin(o, 0.5, 8)[:-1]]\n"
                           "m = max(abs(x) for x in v)\n"
                           "print(' '.join(repr(x / m) for x in sorted(v)))\n"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::istringstream values(run.out);
  for (const float code : kNf4Code) {
    double expected = 0;
    ASSERT_TRUE(values >> expected);
    EXPECT_NEAR(code, expected, 2e-6);
  }
  EXPECT_EQ(kNf4Code[7], 0.0f);
}

TEST(Nf4, IndicesAreTheNearestCodeAndMidpointsRoundDown) {
  for (uint8_t i = 0; i < 16; ++i) EXPECT_EQ(Nf4Index(kNf4Code[i]), i);
  for (uint8_t i = 0; i + 1 < 16; ++i) {
    const float middle = (kNf4Code[i] + kNf4Code[i + 1]) * 0.5f;
    EXPECT_EQ(Nf4Index(middle), i);
    EXPECT_EQ(Nf4Index(std::nextafter(middle, 2.0f)), i + 1);
  }
}

TEST(Nf4, PacksTheEarlierValueInTheHighNibble) {
  const std::vector<float> x = {1.0f, -1.0f, 0.0f, 0.5626170039176941f, -0.5f};
  std::vector<uint8_t> codes(3);
  float absmax = 0;
  QuantizeNf4(x.data(), 5, codes.data(), &absmax);
  EXPECT_EQ(absmax, 1.0f);
  EXPECT_EQ(codes[0], 0xF0);  // 1.0 is code 15, -1.0 code 0
  EXPECT_EQ(codes[1], 0x7D);  // 0.0 is code 7, 0.5626 code 13
  EXPECT_EQ(codes[2], 0x20);  // -0.5 is nearest -0.5251 (code 2); the odd count leaves low 0
}

TEST(Nf4, EveryValueRoundTripsToItsNearestCodeTimesTheBlockAbsmax) {
  const std::vector<float> x = Normal(64 * 40 + 17, 1);
  const std::vector<float> back = RoundTrip(x);
  float widest_gap = 0;
  for (size_t i = 0; i + 1 < kNf4Code.size(); ++i) {
    widest_gap = std::max(widest_gap, kNf4Code[i + 1] - kNf4Code[i]);
  }
  double squared = 0, variance = 0;
  for (size_t block = 0; block * 64 < x.size(); ++block) {
    const size_t end = std::min(x.size(), block * 64 + 64);
    float absmax = 0;
    for (size_t i = block * 64; i < end; ++i) absmax = std::max(absmax, std::fabs(x[i]));
    for (size_t i = block * 64; i < end; ++i) {
      // No code is nearer x than the one it became (up to float rounding of the scale).
      const float error = std::fabs(x[i] - back[i]);
      for (const float code : kNf4Code) EXPECT_LE(error, std::fabs(x[i] - code * absmax) + 1e-6f);
      EXPECT_LE(error, widest_gap / 2 * absmax + 1e-6f);
      squared += error * error;
      variance += x[i] * x[i];
    }
  }
  // NF4 keeps about a tenth of a normal weight's spread as error (the QLoRA paper's regime).
  EXPECT_LT(std::sqrt(squared / variance), 0.12);
}

TEST(Nf4, ABlockOfZerosStaysZero) {
  std::vector<float> x(64, 0.0f);
  x.push_back(3.0f);
  const std::vector<float> back = RoundTrip(x);
  for (size_t i = 0; i < 64; ++i) EXPECT_EQ(back[i], 0.0f);
  EXPECT_EQ(back[64], 3.0f);
}

TEST(Nf4, LengthsNotAMultipleOfTheBlockAreQuantisedWithoutPadding) {
  for (const int64_t n : {1, 7, 63, 65, 100, 64 * 256 + 3}) {
    const Nf4Sizes sizes(n);
    EXPECT_EQ(sizes.code_bytes, (n + 1) / 2);
    EXPECT_EQ(sizes.blocks, (n + 63) / 64);
    const std::vector<float> x = Normal(n, static_cast<uint32_t>(n));
    const std::vector<float> back = RoundTrip(x);
    // The short last block has its own absmax: its largest value comes back exactly.
    const int64_t last = (sizes.blocks - 1) * 64;
    const auto largest = std::max_element(
        x.begin() + last, x.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); });
    EXPECT_EQ(std::fabs(back[static_cast<size_t>(largest - x.begin())]), std::fabs(*largest)) << n;
  }
}

TEST(Nf4, DynamicCodeIsBitsandbytesSigned8BitMap) {
  const std::array<float, 256>& code = DynamicCode8();
  EXPECT_TRUE(std::is_sorted(code.begin(), code.end()));
  EXPECT_EQ(std::adjacent_find(code.begin(), code.end()), code.end());  // all distinct
  EXPECT_EQ(code.back(), 1.0f);
  EXPECT_FLOAT_EQ(code.front(), -0.99296875f);  // -(1 - 0.9 / 128)
  EXPECT_NE(std::find(code.begin(), code.end(), 0.0f), code.end());
  EXPECT_FLOAT_EQ(*std::upper_bound(code.begin(), code.end(), 0.0f), 0.55e-6f);  // 10^-6 * 0.55
}

TEST(Nf4, DoubleQuantisationKeepsAbsmaxCloseAndStoresUnder4Point2Bits) {
  const int64_t rows = 1024, cols = 1024;
  const std::vector<float> w = Normal(rows * cols, 7, 0.02f);
  const Nf4Sizes sizes(rows * cols);
  std::vector<uint8_t> codes(static_cast<size_t>(sizes.code_bytes));
  std::vector<float> absmax(static_cast<size_t>(sizes.blocks));
  QuantizeNf4(w.data(), sizes.values, codes.data(), absmax.data());
  std::vector<uint8_t> quantized(absmax.size());
  std::vector<float> absmax2(static_cast<size_t>(sizes.absmax_blocks));
  float offset = 0;
  QuantizeAbsmax(absmax.data(), sizes.blocks, quantized.data(), absmax2.data(), &offset);
  std::vector<float> recovered(absmax.size());
  DequantizeAbsmax(quantized.data(), absmax2.data(), offset, sizes.blocks, recovered.data());
  double mean = 0;
  for (const float a : absmax) mean += a;
  EXPECT_NEAR(offset, mean / static_cast<double>(absmax.size()), 1e-7);
  float worst = 0;
  for (size_t i = 0; i < absmax.size(); ++i) {
    worst = std::max(worst, std::fabs(recovered[i] - absmax[i]) / absmax[i]);
  }
  EXPECT_LT(worst, 0.02f);  // the 8-bit code is about 1% wide near the absmax spread
  const double bits = 8.0 * static_cast<double>(sizes.StorageBytes(true)) / (rows * cols);
  EXPECT_LT(bits, 4.2);
  EXPECT_NEAR(bits, 4.0 + 8.0 / 64 + 32.0 / (64 * 256), 1e-3);
  EXPECT_DOUBLE_EQ(8.0 * static_cast<double>(sizes.StorageBytes(false)) / (rows * cols), 4.5);
}

TEST(Nf4, ReferenceProductsEqualTheDequantisedWeightsProducts) {
  const int64_t m = 3, rows = 70, cols = 130;  // neither a multiple of the block
  const std::vector<float> w = Normal(rows * cols, 3);
  const Nf4Sizes sizes(rows * cols);
  std::vector<uint8_t> codes(static_cast<size_t>(sizes.code_bytes));
  std::vector<float> absmax(static_cast<size_t>(sizes.blocks)), dense(w.size());
  QuantizeNf4(w.data(), sizes.values, codes.data(), absmax.data());
  DequantizeNf4(codes.data(), absmax.data(), sizes.values, dense.data());
  const std::vector<float> x = Normal(m * cols, 4), dy = Normal(m * rows, 5);
  std::vector<float> y(static_cast<size_t>(m * rows)), dx(static_cast<size_t>(m * cols));
  Nf4Matmul(x.data(), m, codes.data(), absmax.data(), rows, cols, y.data());
  Nf4MatmulTransposed(dy.data(), m, codes.data(), absmax.data(), rows, cols, dx.data());
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      double sum = 0;
      for (int64_t c = 0; c < cols; ++c) sum += x[i * cols + c] * dense[r * cols + c];
      EXPECT_NEAR(y[i * rows + r], sum, 1e-4);
    }
    for (int64_t c = 0; c < cols; ++c) {
      double sum = 0;
      for (int64_t r = 0; r < rows; ++r) sum += dy[i * rows + r] * dense[r * cols + c];
      EXPECT_NEAR(dx[i * cols + c], sum, 1e-4);
    }
  }
  // LoRA's fused forward: the base product plus scale times the low-rank product.
  const int64_t rank = 4;
  const std::vector<float> a = Normal(rank * cols, 6), b = Normal(rows * rank, 8);
  std::vector<float> fused(static_cast<size_t>(m * rows));
  LoraForward(x.data(), m, dense.data(), rows, cols, a.data(), b.data(), rank, 0.5f, fused.data());
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      double low_rank = 0;
      for (int64_t k = 0; k < rank; ++k) {
        double down = 0;
        for (int64_t c = 0; c < cols; ++c) down += x[i * cols + c] * a[k * cols + c];
        low_rank += down * b[r * rank + k];
      }
      EXPECT_NEAR(fused[i * rows + r], y[i * rows + r] + 0.5 * low_rank, 1e-3);
    }
  }
}

}  // namespace
}  // namespace tune::kernels
