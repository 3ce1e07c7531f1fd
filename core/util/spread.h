// The spread of a few repeated measurements (a sweep configuration's scores over its seeds):
// mean, sample standard deviation, and a 95% confidence interval for the mean from Student's t
// distribution, which holds for small samples of roughly normal values. No libtorch.
//
// Why t, and why cut at the score's bounds: a bounded score (exact match, a fraction in [0, 1])
// averaged over seeds is still a mean of a few seed-to-seed values, and the seeds' spread is what
// the interval must carry. Wilson's interval over the eval examples would measure only the eval
// sampling of one seed (on the example sweep, seeds differ by 10 to 20 points where Wilson on 192
// examples says +-7), and a bootstrap over three seeds has ten distinct resamples and covers far
// less than 95%. The true mean lies inside the bounds, so intersecting the t interval with them
// removes only values the mean cannot take: the cut interval covers the mean exactly as often as
// the whole one did, and never runs past 100%.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace tune {

// The values a score can take (its metric's declared range); unbounded by default.
struct Bounds {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool bounded() const;  // either end finite
};

struct Spread {
  int64_t count = 0;
  double mean = 0.0;
  double stddev = 0.0;  // sample standard deviation (n - 1); 0 for one value
  // mean -+ t(0.975, n - 1) * stddev / sqrt(n), within the bounds; both equal the mean for one
  // value, which says nothing about the spread (Spread::count tells the two apart).
  double ci95_low = 0.0;
  double ci95_high = 0.0;
};

// Of an empty list: count 0 and zeros.
Spread SpreadOf(const std::vector<double>& values, const Bounds& bounds = {});

// How the interval was made, for a table header: "t" or "t, in [0, 1]".
std::string IntervalName(const Bounds& bounds);

// The 97.5% quantile of Student's t distribution with `degrees_of_freedom` (>= 1): 12.706 for 1,
// 2.776 for 4, tending to the normal's 1.960.
double StudentT975(int64_t degrees_of_freedom);

}  // namespace tune
