// Learning-rate schedules: the rate for each optimizer step, as Hugging Face transformers'
// get_{constant,linear,cosine}_schedule_with_warmup define them, so runs compare with HF runs.
#pragma once

#include <cstdint>
#include <string_view>

namespace tune {

enum class LrSchedule { kConstant, kLinear, kCosine };

// "constant" | "linear" | "cosine"; throws UserError for anything else.
LrSchedule ParseLrSchedule(std::string_view name);

// The learning rate of optimizer step `step` (0-based) of `total_steps`: a linear warm-up from 0
// over `warmup_steps` (step 0 has rate 0 when there is a warm-up, as in HF), then constant, or a
// linear or half-cosine decay from `peak_lr` to 0 at `total_steps`.
double LearningRate(LrSchedule schedule, double peak_lr, int64_t step, int64_t warmup_steps,
                    int64_t total_steps);

}  // namespace tune
