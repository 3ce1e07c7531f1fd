// Dataset quality: what `tune data inspect` finds in a dataset's examples before anyone trains on
// them. Everything is reported by the examples' 1-based lines in the source file.
//
// - Lengths: of prompt and completion, in the tokenizer's tokens when one is given (as training
//   counts them: BOS included in the prompt, EOS in the completion), in characters (code points)
//   otherwise; rows whose prompt + completion exceeds `seq_len`.
// - Exact duplicates: equal canonical forms (data/dataset_identity.h), the form the dataset hash
//   is defined over.
// - Near-duplicates: MinHash signatures (128 hash functions) over word 3-shingles of the
//   normalised text (lower case, punctuation as spaces, whitespace collapsed; the prompt without
//   the prefix and suffix every prompt shares, such as alpaca's template), candidate pairs
//   from LSH banding (16 bands of 8 rows), each candidate checked by the exact Jaccard similarity
//   of the two shingle sets against `near_threshold`; clusters are the connected groups. Banding
//   finds a pair at similarity 0.8 with probability 0.95 and at 0.9 with 0.9998; below the
//   threshold nothing is reported, since every pair is checked exactly. Exact duplicates count as
//   one row here. A bucket with more than 64 rows compares each only with the bucket's first and
//   previous rows, to stay linear on data made of templates.
// - Conflicts: rows with the same prompt (exactly, as the canonical form holds it) whose
//   completions differ. Near-duplicates never make a conflict: whatever the threshold, two rows
//   with different prompts are two questions, and [dataset.quality] drop_conflicts must not drop
//   them.
// - Empty fields: prompt or completion empty or only whitespace.
// - Format breaks: when at least 90% of the completions share a habit (parse as JSON; end with
//   whitespace or not; start with a capital letter or not), the rows that break it; and
//   completions whose length is far outside the rest (beyond 3 interquartile ranges of the
//   quartiles).
// - Personal data: e-mail addresses, phone numbers (10-15 digits with + ( ) - . or spaces) and
//   card-like digit runs (13-19 digits that pass the Luhn check), with a masked excerpt only.
//
// Threading: one call, one thread; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tune/dataset.h"
#include "tune/tokenizer.h"

namespace tune {

struct QualityOptions {
  double near_threshold = 0.8;  // Jaccard similarity of shingle sets, in (0, 1]
  int64_t seq_len = 0;          // rows longer than this are reported; 0 reports none
};

// A length distribution: quantiles and counts in power-of-two buckets.
struct LengthStats {
  int64_t min = 0, median = 0, p90 = 0, p99 = 0, max = 0;
  // buckets[i] counts lengths in [2^i, 2^(i+1)) (bucket 0 also holds 0); trailing empty ones cut.
  std::vector<int64_t> buckets;
};

struct FormatBreak {
  int64_t line = 0;
  std::string what;  // "completion is not JSON (92% of completions are)"
};

struct PersonalData {
  int64_t line = 0;
  std::string field;   // "prompt" or "completion"
  std::string kind;    // "e-mail address", "phone number", "card number"
  std::string masked;  // "j***@e***.com", "+1 *** *** **67", "**** **** **** 4242"
};

struct QualityReport {
  int64_t rows = 0;
  int64_t bad_rows = 0;
  std::string dataset_sha256;  // of the good rows, as a run records it
  std::string length_unit;     // "tokens" or "characters"
  LengthStats prompt_lengths, completion_lengths;
  int64_t seq_len = 0;
  std::vector<int64_t> over_seq_len;                   // lines
  std::vector<std::vector<int64_t>> exact_duplicates;  // groups of lines, each of 2 or more
  std::vector<std::vector<int64_t>> near_duplicates;   // clusters of lines, each of 2 or more
  double near_threshold = 0.8;
  std::vector<std::vector<int64_t>> conflicts;  // groups of lines: one prompt, other completions
  std::vector<int64_t> empty_prompts, empty_completions;
  std::vector<FormatBreak> format_breaks;
  std::vector<PersonalData> personal_data;

  // Rows that an exact deduplication would drop (each group's rows after its first).
  int64_t ExactDuplicateRows() const;
};

// Inspects `rows` (a dataset plugin's output). `tokenizer` may be null (lengths in characters).
// Throws UserError for a threshold outside (0, 1].
QualityReport InspectDataset(const DatasetRows& rows, const Tokenizer* tokenizer,
                             const QualityOptions& options);

// "4,812 rows; 212 exact duplicates; 37 near-duplicate clusters; 9 conflicts; 3 rows over seq_len
// 512": what a person reads first.
std::string QualitySummary(const QualityReport& report);
// The whole report for a terminal, lines listed (the first 10 of each finding, then a count).
std::string QualityReportText(const QualityReport& report);
// The whole report as JSON, every line listed.
std::string QualityReportJson(const QualityReport& report, int indent = 2);

}  // namespace tune
