// Dataset identity: the content hash recorded with every result, and the stable eval split.
//
// Both are defined over the canonical form of an example: the JSON array [prompt, completion]
// serialised compactly, with exactly the bytes Python's
//   json.dumps([prompt, completion], ensure_ascii=False, separators=(",", ":"))
// gives, encoded as UTF-8: no whitespace, non-ASCII text as raw UTF-8, '"' and '\' escaped,
// \b \f \n \r \t as those escapes, other characters below U+0020 as \u00xx (lower-case hex),
// and nothing else escaped ('/' and U+007F included). Followed by one "\n".
//
// So neither depends on the file's name, format, field names, key order or whitespace, nor on
// the example's line number: only on the text the model is trained on.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tune/dataset.h"

namespace tune {

// The canonical form of one example described above, "\n" included. Throws UserError naming the
// example's line if its text is not valid UTF-8.
std::string CanonicalExample(const TextExample& example);

// Lower-case hex SHA-256 of the canonical forms of `examples`, concatenated in order.
std::string DatasetSha256(std::span<const TextExample> examples);

// Whether `example` belongs to the eval split: the first 8 bytes of the SHA-256 of its canonical
// form, read as a big-endian uint64 and divided by 2^64, are below `eval_fraction`. The answer
// depends on nothing but the example's text and the fraction, so it is the same in every run and
// trial whatever the other examples or their order; raising the fraction only adds examples.
bool InEvalSplit(const TextExample& example, double eval_fraction);

// One line per example, in order: "ROW PROMPT LINE\n" with ROW the hex SHA-256 of the canonical
// form, PROMPT that of the prompt's UTF-8 bytes, LINE the example's line. What a registered
// dataset version keeps of its rows, so that two versions can be compared row by row.
std::string RowHashesText(std::span<const TextExample> examples);

// Two versions' rows compared (RowHashesText of each): rows of `to` equal to a row of `from` are
// unchanged (as many times as `from` has them); a row of `to` whose prompt a row of `from` left
// unmatched has is changed (its completion differs); the other rows of `to` are added, those of
// `from` left over removed. Lines are each file's own.
struct RowsDiff {
  std::vector<int64_t> added;    // lines of `to`
  std::vector<int64_t> removed;  // lines of `from`
  std::vector<int64_t> changed;  // lines of `to`
  int64_t unchanged = 0;
};
// Throws UserError naming the line of a text that is not RowHashesText's format.
RowsDiff DiffRows(std::string_view from, std::string_view to);

}  // namespace tune
