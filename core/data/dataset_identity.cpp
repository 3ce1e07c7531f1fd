#include "data/dataset_identity.h"

#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/sha256.h"

namespace tune {

std::string CanonicalExample(const TextExample& example) {
  std::string canonical;
  try {
    canonical = nlohmann::json::array({example.prompt, example.completion}).dump();
  } catch (const nlohmann::json::exception&) {
    std::string message = "example at line ";
    message += std::to_string(example.line);
    message += " is not valid UTF-8; fix the dataset file's encoding";
    throw UserError(message);
  }
  canonical += '\n';
  return canonical;
}

std::string DatasetSha256(std::span<const TextExample> examples) {
  Sha256 sha;
  for (const TextExample& example : examples) sha.Update(CanonicalExample(example));
  return sha.FinishHex();
}

bool InEvalSplit(const TextExample& example, double eval_fraction) {
  Sha256 sha;
  sha.Update(CanonicalExample(example));
  const Sha256::Digest digest = sha.Finish();
  uint64_t prefix = 0;
  for (size_t i = 0; i < 8; ++i) prefix = (prefix << 8) | digest[i];
  if (!(eval_fraction > 0.0)) return false;
  if (eval_fraction >= 1.0) return true;
  // prefix / 2^64 < f  <=>  prefix < f * 2^64, which is exact in a double (a power-of-two scale)
  // and below 2^64, so the comparison is done exactly in integers.
  const double threshold = eval_fraction * 0x1p64;
  const auto whole = static_cast<uint64_t>(threshold);
  return static_cast<double>(whole) == threshold ? prefix < whole : prefix <= whole;
}

}  // namespace tune
