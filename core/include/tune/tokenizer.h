// Tokenizer: text to token ids and back, as a tokenizer plugin reads it from a model folder.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tune {

// Methods are const and safe to call from several threads at once.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // The ids of `text`, without BOS or EOS.
  virtual std::vector<int32_t> Encode(std::string_view text) const = 0;
  virtual std::string Decode(std::span<const int32_t> ids) const = 0;
  // The vocabulary's own string for `id` ("Ġworld", "▁the", "<0x0A>", "<|eot_id|>"), which is
  // what people inspect; Decode gives the text. Throws for an id outside the vocabulary.
  virtual std::string TokenText(int32_t id) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 when the model has none
  virtual int32_t eos_id() const = 0;  // -1 when the model has none
};

}  // namespace tune
