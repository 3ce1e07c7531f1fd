// Promotion policies' conditions (registry.h AliasPolicy): how one is read and how a version's
// value stands against it. Private to the registry.
#pragma once

#include <optional>
#include <string>

#include "registry/registry.h"

namespace tune::registry_internal {

// The metrics of people's judgements a condition may name (registry.h AliasPolicy says what each
// one is); any other metric is a score of the version.
inline constexpr const char* kHumanMetrics[] = {
    "human.win_rate_vs_current", "human.win_rate_vs_base", "human.judgements", "human.rating"};
bool IsHumanMetric(std::string_view metric);

// "exact_match >= 0.80" as its parts.
struct Condition {
  std::string metric;
  std::string op;  // >= > <= <
  double threshold = 0.0;
};

// Where the policy's condition `index` was written, as an error starts: "FILE:LINE:
// policy.ALIAS.require[INDEX]".
std::string WhereCondition(const AliasPolicy& policy, size_t index);

// policy.require[index] read; UserError starting with WhereCondition for a malformed one.
Condition ParseCondition(const AliasPolicy& policy, size_t index);

// How `value` stands against `condition` (written as `text`); `missing` says why there is no
// value.
PolicyCheck Evaluate(const Condition& condition, const std::string& text,
                     std::optional<double> value, const std::string& missing);

// "exact_match >= 0.80: 0.74, 0.06 short; ..." for the checks not met.
std::string DescribeFailures(const std::vector<PolicyCheck>& checks);

}  // namespace tune::registry_internal
