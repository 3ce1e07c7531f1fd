// Shared by the registry tests: artifact folders and version records to register.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include "registry/registry.h"

namespace tune::testing {

// Writes a PEFT-shaped adapter folder: adapter_config.json and adapter_model.safetensors holding
// `weights` (any bytes: the registry does not read them).
inline std::filesystem::path MakeArtifact(const std::filesystem::path& dir,
                                          const std::string& weights,
                                          const std::string& config = R"({"r": 8})") {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "adapter_config.json", std::ios::binary) << config;
  std::ofstream(dir / "adapter_model.safetensors", std::ios::binary) << weights;
  return dir;
}

// A record with every field set, as a trainer would fill it in.
inline VersionRecord SampleRecord(int64_t rank = 8, double exact_match = 0.5) {
  VersionRecord r;
  r.method = "lora";
  r.params = {{"adapter.rank", rank},
              {"adapter.alpha", 2 * rank},
              {"optimizer.lr", 2e-4},
              {"optimizer.schedule", std::string("cosine")},
              {"adapter.bias", false}};
  r.config_toml = "name = \"rank\"\n[adapter]\nmethod = \"lora\"\nrank = " + std::to_string(rank) +
                  "\n[optimizer]\nlr = 0.0002\n";
  r.dataset_hash = std::string(64, 'd');
  r.dataset_quality = "1,000 rows; 2 exact duplicates; 0 near-duplicate clusters; 0 conflicts";
  r.dataset_dropped = {{"exact_duplicate", 2}};
  r.train_examples = 900;
  r.eval_examples = 100;
  r.base_model_name = "tiny-llama";
  r.base_model_path = "examples/models/tiny";
  r.base_model_hash = std::string(64, 'b');
  r.tokenizer_hash = std::string(64, 't');
  r.seed = 7;
  r.scores = {{"exact_match", exact_match}, {"token_f1", exact_match + 0.1}};
  r.base_scores = {{"exact_match", 0.1}, {"token_f1", 0.2}};
  r.score_scales = {{"exact_match", {"maximize", 0.0, 1.0}}, {"token_f1", {"maximize", 0.0, 1.0}}};
  r.curve = {{0, 2.5, 0.0}, {10, 1.25, 2e-4}, {20, 0.75, 1e-4}};
  r.wall_time_s = 12.5;
  r.peak_memory_bytes = int64_t{3} << 30;
  r.tokens_per_second = 1234.5;
  r.plugins = {{"model", "llama", "1.0.0"}, {"adapter", "lora", "1.0.0"}};
  r.tune_version = "0.1.0";
  r.sweep = "rank";
  r.trial = 3;
  r.configuration = 2;
  r.run_id = "0123456789abcdef";
  return r;
}

}  // namespace tune::testing
