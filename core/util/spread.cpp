#include "util/spread.h"

#include <algorithm>
#include <cmath>

#include "util/number_text.h"

namespace tune {

double StudentT975(int64_t degrees_of_freedom) {
  // Exact to the three decimals of the published tables (Fisher and Yates, table III) up to 30
  // degrees of freedom; past that the Cornish-Fisher expansion around the normal quantile
  // (Abramowitz and Stegun 26.7.5) is within 2e-4 of them.
  static constexpr double kTable[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                                      2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                                      2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                                      2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
  constexpr int64_t kTabulated = sizeof(kTable) / sizeof(kTable[0]);
  if (degrees_of_freedom < 1) degrees_of_freedom = 1;
  if (degrees_of_freedom <= kTabulated) return kTable[degrees_of_freedom - 1];
  const double z = 1.959963984540054;
  const double n = static_cast<double>(degrees_of_freedom);
  const double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
  return z + (z3 + z) / (4 * n) + (5 * z5 + 16 * z3 + 3 * z) / (96 * n * n) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * n * n * n);
}

bool Bounds::bounded() const { return std::isfinite(min) || std::isfinite(max); }

std::string IntervalName(const Bounds& bounds) {
  if (!bounds.bounded()) return "t";
  return "t, in [" + NumberText(bounds.min) + ", " + NumberText(bounds.max) + "]";
}

Spread SpreadOf(const std::vector<double>& values, const Bounds& bounds) {
  Spread spread;
  spread.count = static_cast<int64_t>(values.size());
  if (values.empty()) return spread;
  double sum = 0.0;
  for (const double v : values) sum += v;
  spread.mean = sum / static_cast<double>(values.size());
  spread.ci95_low = spread.ci95_high = spread.mean;
  if (values.size() < 2) return spread;
  double squares = 0.0;
  for (const double v : values) squares += (v - spread.mean) * (v - spread.mean);
  spread.stddev = std::sqrt(squares / static_cast<double>(values.size() - 1));
  const double half =
      StudentT975(spread.count - 1) * spread.stddev / std::sqrt(static_cast<double>(values.size()));
  spread.ci95_low = std::max(spread.mean - half, bounds.min);
  spread.ci95_high = std::min(spread.mean + half, bounds.max);
  return spread;
}

}  // namespace tune
