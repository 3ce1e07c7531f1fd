#include "data/quality.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <map>
#include <numeric>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "data/dataset_identity.h"
#include "util/counted.h"
#include "util/error.h"
#include "util/number_text.h"

namespace tune {
namespace {

using json = nlohmann::json;

constexpr int kHashes = 128;         // MinHash functions
constexpr int kBands = 16;           // LSH bands of kHashes / kBands rows each
constexpr size_t kBigBucket = 64;    // beyond this, a bucket's rows meet only two others each
constexpr double kHabitShare = 0.9;  // a habit most completions keep
constexpr size_t kListedInText = 10;

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t Fnv1a(std::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (const unsigned char c : text) hash = (hash ^ c) * 0x100000001b3ULL;
  return hash;
}

// Lower case, ASCII punctuation as spaces, whitespace collapsed to single spaces, trimmed.
std::string Normalize(std::string_view text) {
  std::string out;
  for (const unsigned char c : text) {
    const bool space = std::isspace(c) || (c < 0x80 && std::ispunct(c));
    if (space) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += static_cast<char>(c < 0x80 ? std::tolower(c) : c);
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Hashes of the word 3-shingles of normalised text, sorted and unique; text of one or two words
// is one shingle.
std::vector<uint64_t> Shingles(const std::string& normalized) {
  std::vector<std::string_view> words;
  for (size_t start = 0; start < normalized.size();) {
    const size_t end = std::min(normalized.find(' ', start), normalized.size());
    words.push_back(std::string_view(normalized).substr(start, end - start));
    start = end + 1;
  }
  std::vector<uint64_t> shingles;
  if (words.empty()) return shingles;
  if (words.size() < 3) {
    shingles.push_back(Fnv1a(normalized));
    return shingles;
  }
  for (size_t i = 0; i + 2 < words.size(); ++i) {
    const std::string_view first = words[i];
    const std::string_view last = words[i + 2];
    shingles.push_back(
        Fnv1a(std::string_view(first.data(), static_cast<size_t>(last.end() - first.begin()))));
  }
  std::sort(shingles.begin(), shingles.end());
  shingles.erase(std::unique(shingles.begin(), shingles.end()), shingles.end());
  return shingles;
}

double Jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  if (a.empty() && b.empty()) return 1.0;
  size_t shared = 0;
  for (size_t i = 0, j = 0; i < a.size() && j < b.size();) {
    if (a[i] == b[j]) {
      ++shared, ++i, ++j;
    } else if (a[i] < b[j]) {
      ++i;
    } else {
      ++j;
    }
  }
  return static_cast<double>(shared) / static_cast<double>(a.size() + b.size() - shared);
}

struct UnionFind {
  explicit UnionFind(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), size_t{0}); }
  size_t Find(size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void Join(size_t a, size_t b) {
    a = Find(a), b = Find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  }
  std::vector<size_t> parent;
};

// Groups of `items` (indices) that share a root, in order of their first member, 2 or more each.
std::vector<std::vector<size_t>> Groups(UnionFind& sets, size_t n) {
  std::map<size_t, std::vector<size_t>> by_root;
  for (size_t i = 0; i < n; ++i) by_root[sets.Find(i)].push_back(i);
  std::vector<std::vector<size_t>> groups;
  for (auto& [root, members] : by_root) {
    if (members.size() > 1) groups.push_back(std::move(members));
  }
  return groups;
}

// Clusters of near-duplicate rows among `distinct` (indices of rows, one per exact-duplicate
// group), as groups of positions in `distinct`.
std::vector<std::vector<size_t>> NearDuplicateClusters(const std::vector<std::string>& normalized,
                                                       const std::vector<size_t>& distinct,
                                                       double threshold) {
  std::array<uint64_t, kHashes> seeds;
  for (int i = 0; i < kHashes; ++i)
    seeds[static_cast<size_t>(i)] = Mix(0x9e3779b97f4a7c15ULL * (i + 1));
  std::vector<std::vector<uint64_t>> shingles(distinct.size());
  std::vector<std::array<uint64_t, kHashes>> signatures(distinct.size());
  for (size_t d = 0; d < distinct.size(); ++d) {
    shingles[d] = Shingles(normalized[distinct[d]]);
    auto& signature = signatures[d];
    signature.fill(UINT64_MAX);
    for (const uint64_t shingle : shingles[d]) {
      for (int i = 0; i < kHashes; ++i) {
        signature[static_cast<size_t>(i)] = std::min(signature[static_cast<size_t>(i)],
                                                     Mix(shingle ^ seeds[static_cast<size_t>(i)]));
      }
    }
  }
  UnionFind sets(distinct.size());
  const auto check = [&](size_t a, size_t b) {
    if (sets.Find(a) != sets.Find(b) && !shingles[a].empty() &&
        Jaccard(shingles[a], shingles[b]) >= threshold) {
      sets.Join(a, b);
    }
  };
  constexpr int kRows = kHashes / kBands;
  for (int band = 0; band < kBands; ++band) {
    std::unordered_map<uint64_t, std::vector<size_t>> buckets;
    for (size_t d = 0; d < distinct.size(); ++d) {
      if (shingles[d].empty()) continue;
      uint64_t key = static_cast<uint64_t>(band);
      for (int r = 0; r < kRows; ++r)
        key = Mix(key ^ signatures[d][static_cast<size_t>(band * kRows + r)]);
      buckets[key].push_back(d);
    }
    for (const auto& [key, members] : buckets) {
      if (members.size() <= kBigBucket) {
        for (size_t i = 0; i < members.size(); ++i) {
          for (size_t j = i + 1; j < members.size(); ++j) check(members[i], members[j]);
        }
      } else {
        for (size_t i = 1; i < members.size(); ++i) {
          check(members[0], members[i]);
          check(members[i - 1], members[i]);
        }
      }
    }
  }
  return Groups(sets, distinct.size());
}

// Each prompt without the longest prefix and suffix that every non-empty prompt shares (a
// template's header and footer, as alpaca's), cut back to whitespace so that no word is split.
// Near-duplicate search compares these, so that a long shared template does not make unrelated
// rows look alike.
std::vector<std::string_view> PromptParts(const std::vector<TextExample>& examples) {
  const std::string* first = nullptr;
  size_t prefix = 0, suffix = 0, prompts = 0;
  for (const TextExample& example : examples) {
    const std::string& prompt = example.prompt;
    if (prompt.empty()) continue;
    if (++prompts == 1) {
      first = &prompt;
      prefix = suffix = prompt.size();
      continue;
    }
    const size_t limit = std::min(prompt.size(), first->size());
    size_t same = 0;
    while (same < std::min(prefix, limit) && prompt[same] == (*first)[same]) ++same;
    prefix = same;
    same = 0;
    while (same < std::min(suffix, limit) &&
           prompt[prompt.size() - 1 - same] == (*first)[first->size() - 1 - same]) {
      ++same;
    }
    suffix = same;
  }
  if (prompts < 2) prefix = suffix = 0;
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (prefix > 0 && prefix < first->size() && !space((*first)[prefix - 1])) --prefix;
  while (suffix > 0 && suffix < first->size() && !space((*first)[first->size() - suffix])) --suffix;
  std::vector<std::string_view> parts;
  for (const TextExample& example : examples) {
    const std::string_view prompt = example.prompt;
    parts.push_back(prompt.size() <= prefix + suffix
                        ? std::string_view()
                        : prompt.substr(prefix, prompt.size() - prefix - suffix));
  }
  return parts;
}

int64_t CodePoints(std::string_view text) {
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

int64_t Quantile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  return sorted[static_cast<size_t>(std::llround(q * static_cast<double>(sorted.size() - 1)))];
}

LengthStats Stats(std::vector<int64_t> lengths) {
  LengthStats stats;
  if (lengths.empty()) return stats;
  std::sort(lengths.begin(), lengths.end());
  stats = {lengths.front(),         Quantile(lengths, 0.5), Quantile(lengths, 0.9),
           Quantile(lengths, 0.99), lengths.back(),         {}};
  for (const int64_t length : lengths) {
    size_t bucket = 0;
    while ((int64_t{2} << bucket) <= length) ++bucket;
    if (stats.buckets.size() <= bucket) stats.buckets.resize(bucket + 1);
    ++stats.buckets[bucket];
  }
  return stats;
}

bool Blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
}

std::string_view Trimmed(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  return text;
}

// Rounded down, so a habit of 199 rows in 200 reads 99%, not 100%.
std::string Percent(double share) {
  return std::to_string(static_cast<int64_t>(std::floor(100.0 * share))) + "%";
}

// A habit of the rows `applies(i)` selects: whether they have a property (`has(i)`). When at
// least 90% have it and some do not, or at least 90% lack it and some have it, the minority is
// reported as `what(minority_has, share)`, share being the majority's.
template <typename Applies, typename Has, typename What>
void Habit(const std::vector<TextExample>& examples, std::vector<FormatBreak>& breaks,
           Applies&& applies, Has&& has, What&& what) {
  std::vector<size_t> with, without;
  for (size_t i = 0; i < examples.size(); ++i) {
    if (applies(i)) (has(i) ? with : without).push_back(i);
  }
  const double counted = static_cast<double>(with.size() + without.size());
  for (const bool minority_has : {false, true}) {
    const std::vector<size_t>& minority = minority_has ? with : without;
    const double share = 1.0 - static_cast<double>(minority.size()) / counted;
    if (minority.empty() || share < kHabitShare) continue;
    for (const size_t i : minority) breaks.push_back({examples[i].line, what(minority_has, share)});
  }
}

void FindFormatBreaks(const std::vector<TextExample>& examples,
                      const std::vector<int64_t>& completion_lengths, const std::string& unit,
                      std::vector<FormatBreak>& breaks) {
  const auto completion = [&](size_t i) -> const std::string& { return examples[i].completion; };
  const auto all = [](size_t) { return true; };
  const auto filled = [&](size_t i) { return !Blank(completion(i)); };
  Habit(
      examples, breaks, all,
      [&](size_t i) {
        const std::string_view text = Trimmed(completion(i));
        return !text.empty() && (text.front() == '{' || text.front() == '[') &&
               json::accept(text.begin(), text.end());
      },
      [](bool json_row, double share) {
        return json_row ? "completion is JSON (" + Percent(share) + " of completions are not)"
                        : "completion is not JSON (" + Percent(share) + " of completions are)";
      });
  Habit(
      examples, breaks, filled,
      [&](size_t i) { return std::isspace(static_cast<unsigned char>(completion(i).back())) != 0; },
      [](bool trailing, double share) {
        return trailing ? "completion ends with whitespace (" + Percent(share) +
                              " of completions do not)"
                        : "completion does not end with whitespace (" + Percent(share) +
                              " of completions do)";
      });
  const auto first_letter = [&](size_t i) -> int {
    const std::string_view text = Trimmed(completion(i));
    return text.empty() ? 0 : static_cast<unsigned char>(text.front());
  };
  Habit(
      examples, breaks, [&](size_t i) { return std::isalpha(first_letter(i)) != 0; },
      [&](size_t i) { return std::isupper(first_letter(i)) != 0; },
      [](bool capital, double share) {
        return capital ? "completion starts with a capital (" + Percent(share) +
                             " of those starting with a letter start in lower case)"
                       : "completion starts in lower case (" + Percent(share) +
                             " of those starting with a letter start in capitals)";
      });
  std::vector<int64_t> sorted = completion_lengths;
  std::sort(sorted.begin(), sorted.end());
  const int64_t q1 = Quantile(sorted, 0.25), q3 = Quantile(sorted, 0.75);
  const int64_t spread = q3 - q1;
  for (size_t i = 0; i < examples.size() && spread > 0; ++i) {
    const int64_t length = completion_lengths[i];
    if (length > q3 + 3 * spread || length < q1 - 3 * spread) {
      breaks.push_back({examples[i].line, "completion is " + std::to_string(length) + " " + unit +
                                              ", far outside the rest (quartiles " +
                                              std::to_string(q1) + " and " + std::to_string(q3) +
                                              ")"});
    }
  }
  std::stable_sort(breaks.begin(), breaks.end(),
                   [](const FormatBreak& a, const FormatBreak& b) { return a.line < b.line; });
}

// ---- Personal data ----

bool EmailChar(unsigned char c, bool local) {
  return std::isalnum(c) || c == '.' || c == '-' || (local && (c == '_' || c == '%' || c == '+'));
}

// The e-mail addresses in `text` as [begin, end) ranges.
std::vector<std::pair<size_t, size_t>> Emails(std::string_view text) {
  std::vector<std::pair<size_t, size_t>> found;
  for (size_t at = text.find('@'); at != std::string_view::npos; at = text.find('@', at + 1)) {
    size_t begin = at, end = at + 1;
    while (begin > 0 && EmailChar(static_cast<unsigned char>(text[begin - 1]), true)) --begin;
    while (end < text.size() && EmailChar(static_cast<unsigned char>(text[end]), false)) ++end;
    while (end > at + 1 && text[end - 1] == '.') --end;  // a sentence's full stop
    const std::string_view domain = text.substr(at + 1, end - at - 1);
    const size_t dot = domain.rfind('.');
    if (begin == at || dot == std::string_view::npos || dot == 0 || domain.size() - dot < 3) {
      continue;
    }
    if (!std::all_of(domain.begin() + static_cast<std::ptrdiff_t>(dot) + 1, domain.end(),
                     [](char c) { return std::isalpha(static_cast<unsigned char>(c)); })) {
      continue;
    }
    found.emplace_back(begin, end);
  }
  return found;
}

std::string MaskEmail(std::string_view email) {
  const size_t at = email.find('@');
  const size_t dot = email.rfind('.');
  return std::string(1, email[0]) + "***@" + std::string(1, email[at + 1]) + "***" +
         std::string(email.substr(dot));
}

bool Luhn(const std::string& digits) {
  int sum = 0;
  for (size_t i = 0; i < digits.size(); ++i) {
    int d = digits[digits.size() - 1 - i] - '0';
    if (i % 2 == 1 && (d *= 2) > 9) d -= 9;
    sum += d;
  }
  return sum % 10 == 0;
}

// Digits replaced by '*' but the last `keep`; separators kept.
std::string MaskDigits(std::string_view run, size_t keep) {
  size_t digits = static_cast<size_t>(std::count_if(
      run.begin(), run.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }));
  std::string masked;
  for (const char c : run) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      masked += digits-- > keep ? '*' : c;
    } else {
      masked += c;
    }
  }
  return masked;
}

void FindPersonalData(const TextExample& example, std::vector<PersonalData>& found) {
  for (const auto& [field, text] :
       {std::pair<const char*, const std::string*>{"prompt", &example.prompt},
        std::pair<const char*, const std::string*>{"completion", &example.completion}}) {
    const std::string_view view(*text);
    for (const auto& [begin, end] : Emails(view)) {
      found.push_back(
          {example.line, field, "e-mail address", MaskEmail(view.substr(begin, end - begin))});
    }
    // Runs of digits and the separators phone and card numbers are written with.
    for (size_t i = 0; i < view.size();) {
      const auto c = static_cast<unsigned char>(view[i]);
      const bool starts =
          std::isdigit(c) || ((c == '+' || c == '(') && i + 1 < view.size() &&
                              std::isdigit(static_cast<unsigned char>(view[i + 1])));
      if (!starts || (i > 0 && std::isalnum(static_cast<unsigned char>(view[i - 1])))) {
        ++i;
        continue;
      }
      size_t end = i;
      std::string digits;
      bool separated = false;
      while (end < view.size()) {
        const auto d = static_cast<unsigned char>(view[end]);
        if (std::isdigit(d)) {
          digits += static_cast<char>(d);
        } else if ((d == ' ' || d == '-' || d == '.' || d == '(' || d == ')' || d == '+') &&
                   end + 1 < view.size() &&
                   (std::isdigit(static_cast<unsigned char>(view[end + 1])) ||
                    view[end + 1] == '(' || view[end + 1] == ' ')) {
          separated = true;
        } else {
          break;
        }
        ++end;
      }
      while (end > i && !std::isdigit(static_cast<unsigned char>(view[end - 1])) &&
             view[end - 1] != ')') {
        --end;
      }
      const std::string_view run = view.substr(i, end - i);
      if (digits.size() >= 13 && digits.size() <= 19 && Luhn(digits)) {
        found.push_back({example.line, field, "card number", MaskDigits(run, 4)});
      } else if (digits.size() >= 10 && digits.size() <= 15 && (separated || view[i] == '+')) {
        found.push_back({example.line, field, "phone number", MaskDigits(run, 2)});
      }
      i = std::max(end, i + 1);
    }
  }
}

json StatsJson(const LengthStats& s) {
  return {{"min", s.min}, {"median", s.median}, {"p90", s.p90},
          {"p99", s.p99}, {"max", s.max},       {"buckets", s.buckets}};
}

std::string LineList(const std::vector<int64_t>& lines) {
  std::string text;
  for (size_t i = 0; i < lines.size() && i < kListedInText; ++i) {
    text += (i == 0 ? "" : ", ") + std::to_string(lines[i]);
  }
  if (lines.size() > kListedInText) text += ", ... (" + std::to_string(lines.size()) + " in all)";
  return text;
}

void ListGroups(std::string& out, const std::vector<std::vector<int64_t>>& groups) {
  for (size_t i = 0; i < groups.size() && i < kListedInText; ++i) {
    out += "  lines " + LineList(groups[i]) + "\n";
  }
  if (groups.size() > kListedInText) {
    out += "  ... " + std::to_string(groups.size() - kListedInText) + " more (--json lists all)\n";
  }
}

}  // namespace

int64_t QualityReport::ExactDuplicateRows() const {
  int64_t rows_beyond_first = 0;
  for (const auto& group : exact_duplicates)
    rows_beyond_first += static_cast<int64_t>(group.size()) - 1;
  return rows_beyond_first;
}

namespace {

std::vector<int64_t> LinesOf(const std::vector<TextExample>& examples,
                             const std::vector<size_t>& indices) {
  std::vector<int64_t> lines;
  for (const size_t i : indices) lines.push_back(examples[i].line);
  return lines;
}

// Joins in `sets` the rows whose `key(i)` is the same (rows whose key is empty stay alone) and
// returns the first row of each key, in row order.
template <typename Key>
std::vector<size_t> JoinEqual(size_t rows, Key&& key, UnionFind& sets) {
  std::unordered_map<std::string, size_t> first_of;
  std::vector<size_t> firsts;
  for (size_t i = 0; i < rows; ++i) {
    std::string k = key(i);
    if (k.empty()) continue;
    const auto [it, inserted] = first_of.emplace(std::move(k), i);
    if (inserted) {
      firsts.push_back(i);
    } else {
      sets.Join(it->second, i);
    }
  }
  return firsts;
}

// Lengths, long rows, empty fields and personal data: what each row shows on its own.
void MeasureRows(const std::vector<TextExample>& examples, const Tokenizer* tokenizer,
                 int64_t seq_len, QualityReport& report, std::vector<int64_t>& completion_lengths) {
  std::vector<int64_t> prompt_lengths;
  for (const TextExample& example : examples) {
    int64_t prompt = CodePoints(example.prompt), completion = CodePoints(example.completion);
    if (tokenizer != nullptr) {
      prompt = static_cast<int64_t>(tokenizer->Encode(example.prompt).size()) +
               (tokenizer->bos_id() >= 0 ? 1 : 0);
      completion = static_cast<int64_t>(tokenizer->Encode(example.completion).size()) +
                   (tokenizer->eos_id() >= 0 ? 1 : 0);
    }
    prompt_lengths.push_back(prompt);
    completion_lengths.push_back(completion);
    if (seq_len > 0 && prompt + completion > seq_len) report.over_seq_len.push_back(example.line);
    if (Blank(example.prompt)) report.empty_prompts.push_back(example.line);
    if (Blank(example.completion)) report.empty_completions.push_back(example.line);
    FindPersonalData(example, report.personal_data);
  }
  report.prompt_lengths = Stats(prompt_lengths);
  report.completion_lengths = Stats(completion_lengths);
}

// Exact duplicates by canonical form; then near-duplicates among one row of each exact group,
// over the prompt's part outside a shared template and the completion.
void FindDuplicates(const std::vector<TextExample>& examples,
                    const std::vector<std::string_view>& parts, double threshold,
                    QualityReport& report) {
  UnionFind exact(examples.size());
  const std::vector<size_t> distinct = JoinEqual(
      examples.size(), [&](size_t i) { return CanonicalExample(examples[i]); }, exact);
  for (const auto& group : Groups(exact, examples.size())) {
    report.exact_duplicates.push_back(LinesOf(examples, group));
  }
  std::vector<std::string> normalized;
  normalized.reserve(examples.size());
  for (size_t i = 0; i < examples.size(); ++i) {
    normalized.push_back(
        Normalize(std::string(parts[i]).append("\n").append(examples[i].completion)));
  }
  for (const auto& cluster : NearDuplicateClusters(normalized, distinct, threshold)) {
    std::vector<size_t> members;
    for (const size_t d : cluster) members.push_back(distinct[d]);
    report.near_duplicates.push_back(LinesOf(examples, members));
  }
}

// Rows with one prompt (exactly: the canonical form holds the prompt's text as it is) and
// completions that are not all the same; blank prompts are empty fields, not one prompt.
// Near-duplicate prompts make no conflict: at a low --near-threshold unrelated prompts pass for
// near-duplicates, and drop_conflicts dropped valid rows (317 of the example data at 0.5).
std::vector<std::vector<int64_t>> FindConflicts(const std::vector<TextExample>& examples) {
  UnionFind same_prompt(examples.size());
  JoinEqual(
      examples.size(),
      [&](size_t i) { return Blank(examples[i].prompt) ? std::string() : examples[i].prompt; },
      same_prompt);
  std::vector<std::vector<int64_t>> conflicts;
  for (const auto& members : Groups(same_prompt, examples.size())) {
    const std::string& first = examples[members[0]].completion;
    if (std::any_of(members.begin() + 1, members.end(),
                    [&](size_t i) { return examples[i].completion != first; })) {
      conflicts.push_back(LinesOf(examples, members));
    }
  }
  std::sort(conflicts.begin(), conflicts.end());
  return conflicts;
}

}  // namespace

QualityReport InspectDataset(const DatasetRows& rows, const Tokenizer* tokenizer,
                             const QualityOptions& options) {
  if (!(options.near_threshold > 0.0 && options.near_threshold <= 1.0)) {
    throw UserError("the near-duplicate threshold is " + NumberText(options.near_threshold) +
                    "; give a Jaccard similarity in (0, 1], such as 0.8");
  }
  const std::vector<TextExample>& examples = rows.examples;
  QualityReport report;
  report.rows = static_cast<int64_t>(examples.size());
  report.bad_rows = static_cast<int64_t>(rows.bad_rows.size());
  report.dataset_sha256 = DatasetSha256(examples);
  report.length_unit = tokenizer != nullptr ? "tokens" : "characters";
  report.seq_len = options.seq_len;
  report.near_threshold = options.near_threshold;
  std::vector<int64_t> completion_lengths;
  MeasureRows(examples, tokenizer, options.seq_len, report, completion_lengths);
  const std::vector<std::string_view> parts = PromptParts(examples);
  FindDuplicates(examples, parts, options.near_threshold, report);
  report.conflicts = FindConflicts(examples);
  FindFormatBreaks(examples, completion_lengths, report.length_unit, report.format_breaks);
  return report;
}

std::string QualitySummary(const QualityReport& r) {
  std::string text = CountedGrouped(r.rows, "row");
  if (r.bad_rows > 0) text += " (and " + Grouped(r.bad_rows) + " unreadable)";
  text += "; " + CountedGrouped(r.ExactDuplicateRows(), "exact duplicate") + "; " +
          CountedGrouped(static_cast<int64_t>(r.near_duplicates.size()), "near-duplicate cluster") +
          "; " + CountedGrouped(static_cast<int64_t>(r.conflicts.size()), "conflict");
  const int64_t empty = static_cast<int64_t>(r.empty_prompts.size() + r.empty_completions.size());
  if (empty > 0) text += "; " + CountedGrouped(empty, "empty field");
  if (!r.format_breaks.empty()) {
    text += "; " + CountedGrouped(static_cast<int64_t>(r.format_breaks.size()), "format break");
  }
  if (!r.personal_data.empty()) {
    text += "; " + Grouped(static_cast<int64_t>(r.personal_data.size())) + " likely personal data";
  }
  if (r.seq_len > 0) {
    text += "; " + CountedGrouped(static_cast<int64_t>(r.over_seq_len.size()), "row") +
            " over seq_len " + std::to_string(r.seq_len);
  }
  return text;
}

std::string QualityReportText(const QualityReport& r) {
  std::string out = QualitySummary(r) + "\n";
  out += "dataset sha256 " + r.dataset_sha256 + "\n\n";
  const auto stats_row = [&](const char* name, const LengthStats& s) {
    char row[160];
    std::snprintf(row, sizeof(row), "  %-10s %8lld %8lld %8lld %8lld %8lld\n", name,
                  static_cast<long long>(s.min), static_cast<long long>(s.median),
                  static_cast<long long>(s.p90), static_cast<long long>(s.p99),
                  static_cast<long long>(s.max));
    return std::string(row);
  };
  out += "lengths in " + r.length_unit + ":\n";
  out += "             min   median      p90      p99      max\n";
  out += stats_row("prompt", r.prompt_lengths) + stats_row("completion", r.completion_lengths);
  out += "completion " + r.length_unit + ", rows per range:\n";
  const int64_t most = r.completion_lengths.buckets.empty()
                           ? 1
                           : *std::max_element(r.completion_lengths.buckets.begin(),
                                               r.completion_lengths.buckets.end());
  for (size_t b = 0; b < r.completion_lengths.buckets.size(); ++b) {
    const int64_t count = r.completion_lengths.buckets[b];
    char row[160];
    std::snprintf(
        row, sizeof(row), "  %6lld-%-6lld %8lld %s\n",
        static_cast<long long>(b == 0 ? 0 : int64_t{1} << b),
        static_cast<long long>((int64_t{2} << b) - 1), static_cast<long long>(count),
        std::string(static_cast<size_t>(40 * count / std::max<int64_t>(most, 1)), '#').c_str());
    out += row;
  }
  if (r.seq_len > 0) {
    out += "\nrows over seq_len " + std::to_string(r.seq_len) + ": " +
           (r.over_seq_len.empty() ? "none" : LineList(r.over_seq_len)) + "\n";
  }
  out += "\nexact duplicates: " +
         CountedGrouped(static_cast<int64_t>(r.exact_duplicates.size()), "group") + ", " +
         CountedGrouped(r.ExactDuplicateRows(), "row") + " beyond the first of each\n";
  ListGroups(out, r.exact_duplicates);
  out += "near-duplicates (word 3-shingle Jaccard >= " + NumberText(r.near_threshold) +
         "): " + CountedGrouped(static_cast<int64_t>(r.near_duplicates.size()), "cluster") + "\n";
  ListGroups(out, r.near_duplicates);
  out += "conflicts (one prompt, different completions): " +
         CountedGrouped(static_cast<int64_t>(r.conflicts.size()), "group") + "\n";
  ListGroups(out, r.conflicts);
  out += "empty prompts: " + (r.empty_prompts.empty() ? "none" : LineList(r.empty_prompts)) + "\n";
  out += "empty completions: " +
         (r.empty_completions.empty() ? "none" : LineList(r.empty_completions)) + "\n";
  out += "format breaks: " + CountedGrouped(static_cast<int64_t>(r.format_breaks.size()), "row") +
         "\n";
  for (size_t i = 0; i < r.format_breaks.size() && i < kListedInText; ++i) {
    out +=
        "  line " + std::to_string(r.format_breaks[i].line) + ": " + r.format_breaks[i].what + "\n";
  }
  if (r.format_breaks.size() > kListedInText) {
    out += "  ... " + std::to_string(r.format_breaks.size() - kListedInText) + " more\n";
  }
  out += "likely personal data: " +
         CountedGrouped(static_cast<int64_t>(r.personal_data.size()), "finding") + "\n";
  for (size_t i = 0; i < r.personal_data.size() && i < kListedInText; ++i) {
    const PersonalData& p = r.personal_data[i];
    out +=
        "  line " + std::to_string(p.line) + " " + p.field + ": " + p.kind + " " + p.masked + "\n";
  }
  if (r.personal_data.size() > kListedInText) {
    out += "  ... " + std::to_string(r.personal_data.size() - kListedInText) + " more\n";
  }
  return out;
}

std::string QualityReportJson(const QualityReport& r, int indent) {
  json breaks = json::array();
  for (const FormatBreak& b : r.format_breaks)
    breaks.push_back({{"line", b.line}, {"what", b.what}});
  json personal = json::array();
  for (const PersonalData& p : r.personal_data) {
    personal.push_back(
        {{"line", p.line}, {"field", p.field}, {"kind", p.kind}, {"masked", p.masked}});
  }
  return json{{"summary", QualitySummary(r)},
              {"rows", r.rows},
              {"bad_rows", r.bad_rows},
              {"dataset_sha256", r.dataset_sha256},
              {"length_unit", r.length_unit},
              {"prompt_lengths", StatsJson(r.prompt_lengths)},
              {"completion_lengths", StatsJson(r.completion_lengths)},
              {"seq_len", r.seq_len},
              {"over_seq_len", r.over_seq_len},
              {"exact_duplicates", json(r.exact_duplicates)},
              {"exact_duplicate_rows", r.ExactDuplicateRows()},
              {"near_threshold", r.near_threshold},
              {"near_duplicates", json(r.near_duplicates)},
              {"conflicts", json(r.conflicts)},
              {"empty_prompts", r.empty_prompts},
              {"empty_completions", r.empty_completions},
              {"format_breaks", breaks},
              {"personal_data", personal}}
      .dump(indent);
}

}  // namespace tune
