#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "util/error.h"

namespace tune {

LrSchedule ParseLrSchedule(std::string_view name) {
  if (name == "constant") return LrSchedule::kConstant;
  if (name == "linear") return LrSchedule::kLinear;
  if (name == "cosine") return LrSchedule::kCosine;
  std::string message = "unknown learning-rate schedule '";
  message += name;
  message += "'; use constant, linear or cosine";
  throw UserError(message);
}

double LearningRate(LrSchedule schedule, double peak_lr, int64_t step, int64_t warmup_steps,
                    int64_t total_steps) {
  if (step < warmup_steps) {
    return peak_lr * static_cast<double>(step) /
           static_cast<double>(std::max<int64_t>(1, warmup_steps));
  }
  const double decay_steps = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  const double progress = static_cast<double>(step - warmup_steps) / decay_steps;
  switch (schedule) {
    case LrSchedule::kConstant:
      return peak_lr;
    case LrSchedule::kLinear:
      return peak_lr * std::max(0.0, static_cast<double>(total_steps - step) / decay_steps);
    case LrSchedule::kCosine:
      return peak_lr * std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
  }
  return peak_lr;
}

}  // namespace tune
