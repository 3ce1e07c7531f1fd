#include "data/dataset_identity.h"

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace tune {
namespace {

using Digest = std::array<unsigned char, 32>;

// Incremental SHA-256 through OpenSSL's EVP interface.
class Sha256 {
 public:
  Sha256() : context_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    if (context_ == nullptr || EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) != 1) {
      throw std::runtime_error("OpenSSL could not start a SHA-256 digest");
    }
  }
  void Update(std::string_view bytes) {
    if (EVP_DigestUpdate(context_.get(), bytes.data(), bytes.size()) != 1) {
      throw std::runtime_error("OpenSSL SHA-256 update failed");
    }
  }
  Digest Finish() {
    Digest digest;
    unsigned int size = 0;
    if (EVP_DigestFinal_ex(context_.get(), digest.data(), &size) != 1 || size != digest.size()) {
      throw std::runtime_error("OpenSSL SHA-256 final failed");
    }
    return digest;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context_;
};

}  // namespace

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
  const Digest digest = sha.Finish();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * digest.size());
  for (unsigned char byte : digest) {
    hex += kHex[byte >> 4];
    hex += kHex[byte & 0xf];
  }
  return hex;
}

bool InEvalSplit(const TextExample& example, double eval_fraction) {
  Sha256 sha;
  sha.Update(CanonicalExample(example));
  const Digest digest = sha.Finish();
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
