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

#include <span>
#include <string>

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

}  // namespace tune
