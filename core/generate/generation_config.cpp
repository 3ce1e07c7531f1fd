#include "generate/generation_config.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "generate/generate.h"
#include "tune/tokenizer.h"
#include "util/error.h"
#include "util/json_file.h"

namespace tune {
namespace fs = std::filesystem;
using json = nlohmann::json;

GenerationConfig ReadGenerationConfig(const fs::path& dir) {
  GenerationConfig config;
  const fs::path file = dir / "generation_config.json";
  std::error_code error;
  if (!fs::exists(file, error)) return config;
  const json doc = ReadJsonFile(file);
  if (!doc.is_object()) throw UserError(file.string() + ": expected a JSON object");
  const auto fail = [&](const char* key, const char* expected) {
    throw UserError(file.string() + ": '" + key + "' = " + doc[key].dump() + " is not " + expected);
  };
  const auto present = [&](const char* key) { return doc.contains(key) && !doc[key].is_null(); };
  if (present("eos_token_id")) {
    const json& eos = doc["eos_token_id"];
    for (const json& id : eos.is_array() ? eos : json::array({eos})) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
        fail("eos_token_id", "a token id or a list of them");
      }
      config.eos_ids.push_back(id.get<int32_t>());
    }
  }
  if (present("do_sample")) {
    if (!doc["do_sample"].is_boolean()) fail("do_sample", "true or false");
    config.do_sample = doc["do_sample"].get<bool>();
  }
  if (present("temperature")) {
    if (!doc["temperature"].is_number() || !(doc["temperature"].get<double>() >= 0) ||
        !std::isfinite(doc["temperature"].get<double>())) {
      fail("temperature", "a number >= 0");
    }
    config.temperature = doc["temperature"].get<double>();
  }
  if (present("top_p")) {
    const double top_p = doc["top_p"].is_number() ? doc["top_p"].get<double>() : -1;
    if (!(top_p > 0 && top_p <= 1)) fail("top_p", "a number in (0, 1]");
    config.top_p = top_p;
  }
  if (present("max_new_tokens")) {
    if (!doc["max_new_tokens"].is_number_integer() || doc["max_new_tokens"].get<int64_t>() < 0) {
      fail("max_new_tokens", "a count >= 0");
    }
    config.max_new_tokens = doc["max_new_tokens"].get<int64_t>();
  }
  return config;
}

std::vector<int32_t> EndIds(const GenerationConfig& config, const Tokenizer& tokenizer) {
  std::vector<int32_t> ids;
  if (tokenizer.eos_id() >= 0) ids.push_back(tokenizer.eos_id());
  for (const int32_t id : config.eos_ids) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  return ids;
}

void ApplyGenerationConfig(const GenerationConfig& config, SamplingOptions& options) {
  if (config.do_sample) {
    options.temperature = config.temperature.value_or(1.0);
    options.top_p = config.top_p.value_or(1.0);
  } else {
    options.temperature = 0.0;
  }
  if (config.max_new_tokens) options.max_new_tokens = *config.max_new_tokens;
}

}  // namespace tune
