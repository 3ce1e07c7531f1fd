// The filter and sort language of Registry::List (see ListOptions in registry.h). Private to the
// registry; hand-written (no std::regex).
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "registry/registry.h"

namespace tune::registry_internal {

// What a key holds on one version: a number or text. Booleans are the text "true" or "false".
using FilterValue = std::variant<double, std::string>;

// The value of `key` on `record`, or nullopt when the record does not have it.
std::optional<FilterValue> LookupKey(const VersionRecord& record, std::string_view key);
// Every key `record` has a value for, for "did you mean".
void CollectKeys(const VersionRecord& record, std::set<std::string>& keys);

class Filter {
 public:
  // Throws UserError naming the column (from 1) of the first thing it cannot parse.
  static Filter Parse(std::string_view text);

  bool empty() const { return nodes_.empty(); }
  bool Matches(const VersionRecord& record) const;

  struct KeyUse {
    std::string key;
    size_t column = 0;
  };
  const std::vector<KeyUse>& keys() const { return keys_; }
  const std::string& text() const { return text_; }

  enum class Op { kEq, kNe, kLt, kLe, kGt, kGe };
  struct Node {
    enum class Kind { kAnd, kOr, kNot, kCompare } kind = Kind::kCompare;
    int left = -1;  // children, as indices into nodes_
    int right = -1;
    std::string key;
    Op op = Op::kEq;
    FilterValue value;
  };

 private:
  bool Evaluate(int node, const VersionRecord& record) const;

  std::string text_;
  std::vector<Node> nodes_;
  int root_ = -1;
  std::vector<KeyUse> keys_;

  friend class FilterParser;
};

// Orders a < b by `key` ("-key" for descending); records without the key come last.
struct SortKey {
  std::string key;
  bool descending = false;
  static SortKey Parse(std::string_view text);
};
bool SortBefore(const SortKey& sort, const VersionRecord& a, const VersionRecord& b);

// A record with its value of the sort key looked up once, for sorting many records.
struct SortEntry {
  std::optional<FilterValue> value;  // nullopt when the key is empty or the record lacks it
  const VersionRecord* record = nullptr;
};
SortEntry MakeSortEntry(const SortKey& sort, const VersionRecord& record);
// The order of SortBefore; a total order (ties fall back to name, then version).
bool SortBefore(const SortKey& sort, const SortEntry& a, const SortEntry& b);

}  // namespace tune::registry_internal
