// SHA-256 (OpenSSL EVP), incremental, for content hashes: datasets, configs, files.
#pragma once

#include <array>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace tune {

class Sha256 {
 public:
  using Digest = std::array<unsigned char, 32>;

  Sha256();
  void Update(std::string_view bytes);
  // Hashes the file's bytes. Throws UserError if it cannot be read.
  void UpdateFromFile(const std::filesystem::path& path);
  Digest Finish();          // once; the object is spent afterwards
  std::string FinishHex();  // lower-case hex of Finish()

 private:
  std::unique_ptr<evp_md_ctx_st, void (*)(evp_md_ctx_st*)> context_;
};

// Lower-case hex SHA-256 of `bytes`.
std::string Sha256Hex(std::string_view bytes);

// Lower-case hex SHA-256 of the file's bytes. Throws UserError if it cannot be read.
std::string FileSha256(const std::filesystem::path& path);

}  // namespace tune
