// What the registry benchmarks register: adapter folders of fresh random bytes. Private to bench/.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

namespace tune::bench {

// An adapter folder whose weights are `size_bytes` of fresh random bytes (never deduplicated).
inline std::filesystem::path MakeAdapter(const std::filesystem::path& dir, size_t size_bytes,
                                         std::mt19937_64& random) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "adapter_config.json") << R"({"r": 16, "lora_alpha": 32})";
  std::vector<uint64_t> words((size_bytes + 7) / 8);
  for (uint64_t& word : words) word = random();
  std::ofstream(dir / "adapter_model.safetensors", std::ios::binary)
      .write(reinterpret_cast<const char*>(words.data()), static_cast<std::streamsize>(size_bytes));
  return dir;
}

}  // namespace tune::bench
