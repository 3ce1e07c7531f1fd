#include "registry/policy.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include <toml++/toml.h>

#include "util/echo.h"
#include "util/names.h"
#include "util/suggest.h"

namespace tune {
namespace {

std::string Number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

std::string Line(const toml::source_region& region) { return std::to_string(region.begin.line); }

}  // namespace

std::vector<AliasPolicy> ParsePolicies(std::string_view text, const std::string& source,
                                       std::string_view adapter) {
  toml::table file;
  try {
    file = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw UserError(source + ":" + Line(e.source()) + ": " + std::string(e.description()) +
                    "; a policy file is TOML: [policy.ALIAS] with require = [\"METRIC >= "
                    "NUMBER\", ...] and approvers = N");
  }
  std::vector<AliasPolicy> policies;
  for (const auto& [key, node] : file) {
    if (key.str() != "policy" || !node.is_table()) {
      throw UserError(source + ":" + Line(node.source()) + ": unknown key '" + Echo(key.str(), 64) +
                      "'; a policy file holds [policy.ALIAS] tables, one per alias");
    }
    for (const auto& [alias, table_node] : *node.as_table()) {
      const std::string where =
          source + ":" + Line(table_node.source()) + ": policy." + Echo(alias.str(), 64);
      if (!IsValidName(alias.str()) || alias.str() == kLatestAlias) {
        throw UserError(where + ": '" + Echo(alias.str(), 64) +
                        "' cannot be an alias (1 to 64 of a-z 0-9 . _ -, not latest)");
      }
      const toml::table* table = table_node.as_table();
      if (table == nullptr) {
        throw UserError(where + " is a table: [policy." + std::string(alias.str()) + "]");
      }
      AliasPolicy policy;
      policy.name = std::string(adapter);
      policy.alias = std::string(alias.str());
      policy.source = source;
      for (const auto& [field, value] : *table) {
        const std::string at = source + ":" + Line(value.source()) + ": policy." + policy.alias +
                               "." + std::string(field.str());
        if (field.str() == "require") {
          const toml::array* conditions = value.as_array();
          if (conditions == nullptr) {
            throw UserError(at + " is a list of conditions: [\"exact_match >= 0.80\", ...]");
          }
          for (const toml::node& condition : *conditions) {
            if (!condition.is_string()) {
              throw UserError(source + ":" + Line(condition.source()) + ": policy." + policy.alias +
                              ".require holds strings such as \"exact_match >= 0.80\"");
            }
            policy.require.push_back(condition.as_string()->get());
            policy.lines.push_back(condition.source().begin.line);
          }
        } else if (field.str() == "approvers") {
          const std::optional<int64_t> approvers = value.value<int64_t>();
          if (!value.is_integer() || !approvers || *approvers < 0 || *approvers > 10) {
            throw UserError(at +
                            " is a whole number from 0 to 10: the people with the promote "
                            "role, other than the one who asked, who must approve");
          }
          policy.approvers = *approvers;
        } else {
          const std::vector<std::string> known = {"require", "approvers"};
          throw UserError(at + ": unknown key '" + Echo(field.str(), 64) + "'" +
                          DidYouMean(field.str(), known) + "; a policy has require and approvers");
        }
      }
      policies.push_back(std::move(policy));
    }
  }
  if (policies.empty()) {
    throw UserError(source +
                    ": no [policy.ALIAS] table; write one such as [policy.production] "
                    "with require = [\"exact_match >= 0.80\"]");
  }
  return policies;
}

namespace registry_internal {

bool IsHumanMetric(std::string_view metric) {
  for (const char* known : kHumanMetrics) {
    if (metric == known) return true;
  }
  return false;
}

std::string WhereCondition(const AliasPolicy& policy, size_t index) {
  std::string where = policy.source.empty() ? std::string("policy") : policy.source;
  if (index < policy.lines.size() && policy.lines[index] > 0) {
    where.append(":").append(std::to_string(policy.lines[index]));
  }
  where.append(": policy.").append(policy.alias).append(".require[");
  return where.append(std::to_string(index)).append("]");
}

Condition ParseCondition(const AliasPolicy& policy, size_t index) {
  const std::string& text = policy.require.at(index);
  const auto refuse = [&](const std::string& why) {
    throw UserError(WhereCondition(policy, index) + ": '" + Echo(text, 80) + "' " + why +
                    "; a condition is METRIC OP NUMBER with OP one of >= > <= <, such as "
                    "\"exact_match >= 0.80\"");
  };
  std::istringstream in(text);
  Condition condition;
  std::string number;
  std::string rest;
  if (!(in >> condition.metric >> condition.op >> number) || (in >> rest)) {
    refuse("is not three words");
  }
  if (condition.op != ">=" && condition.op != ">" && condition.op != "<=" && condition.op != "<") {
    refuse("compares with '" + Echo(condition.op, 8) + "'");
  }
  const bool metric_ok =
      !condition.metric.empty() &&
      std::all_of(condition.metric.begin(), condition.metric.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
      });
  if (!metric_ok) refuse("names no metric ('" + Echo(condition.metric, 32) + "')");
  if (condition.metric.starts_with("human.") && !IsHumanMetric(condition.metric)) {
    const std::vector<std::string> known(std::begin(kHumanMetrics), std::end(kHumanMetrics));
    throw UserError(WhereCondition(policy, index) + ": unknown metric '" + condition.metric + "'" +
                    DidYouMean(condition.metric, known) +
                    "; people's judgements give human.win_rate_vs_current, "
                    "human.win_rate_vs_base, human.judgements and human.rating");
  }
  errno = 0;
  char* end = nullptr;
  condition.threshold = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || errno != 0 || !std::isfinite(condition.threshold)) {
    refuse("compares with '" + Echo(number, 32) + "', which is not a number");
  }
  return condition;
}

PolicyCheck Evaluate(const Condition& condition, const std::string& text,
                     std::optional<double> value, const std::string& missing) {
  PolicyCheck check{text, false, value, missing};
  if (!value) return check;
  const double v = *value;
  const double t = condition.threshold;
  if (condition.op == ">=") check.met = v >= t;
  if (condition.op == ">") check.met = v > t;
  if (condition.op == "<=") check.met = v <= t;
  if (condition.op == "<") check.met = v < t;
  const std::string needs = "needs " + condition.op + " " + Number(t);
  if (check.met) {
    check.detail = Number(v) + " (" + needs + ")";
  } else {
    const double gap = condition.op[0] == '>' ? t - v : v - t;
    check.detail = Number(v) + ", " + Number(gap) + (condition.op[0] == '>' ? " short" : " over") +
                   " (" + needs + ")";
  }
  return check;
}

std::string DescribeFailures(const std::vector<PolicyCheck>& checks) {
  std::string text;
  for (const PolicyCheck& check : checks) {
    if (check.met) continue;
    if (!text.empty()) text += "; ";
    text += check.condition + ": " + check.detail;
  }
  return text;
}

}  // namespace registry_internal
}  // namespace tune
