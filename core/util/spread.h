// The spread of a few repeated measurements (a sweep configuration's scores over its seeds):
// mean, sample standard deviation, and a 95% confidence interval for the mean from Student's t
// distribution, which holds for small samples of roughly normal values. No libtorch.
#pragma once

#include <cstdint>
#include <vector>

namespace tune {

struct Spread {
  int64_t count = 0;
  double mean = 0.0;
  double stddev = 0.0;  // sample standard deviation (n - 1); 0 for one value
  // mean -+ t(0.975, n - 1) * stddev / sqrt(n); both equal the mean for one value, which says
  // nothing about the spread (Spread::count tells the two apart).
  double ci95_low = 0.0;
  double ci95_high = 0.0;
};

// Of an empty list: count 0 and zeros.
Spread SpreadOf(const std::vector<double>& values);

// The 97.5% quantile of Student's t distribution with `degrees_of_freedom` (>= 1): 12.706 for 1,
// 2.776 for 4, tending to the normal's 1.960.
double StudentT975(int64_t degrees_of_freedom);

}  // namespace tune
