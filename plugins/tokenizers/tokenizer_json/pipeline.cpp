#include "pipeline.h"

#include <nlohmann/json.hpp>

#include <memory>

#include "regex.h"
#include "tune/error.h"
#include "unicode.h"
#include "util/json_file.h"

namespace tune::tokenizer_json {
namespace {

using json = nlohmann::json;

// GPT-2's own split, used by the ByteLevel pre-tokenizer when use_regex is true.
constexpr std::string_view kByteLevelSplit =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

[[noreturn]] void Unsupported(const std::string& where, const std::string& kind,
                              const std::string& type, const char* supported) {
  throw UserError(where + ": " + kind + " type '" + type + "' is not supported (tune reads " +
                  supported + ")");
}

std::string TypeOf(const json& spec, const std::string& where) {
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    throw UserError(where + ": expected an object with a string \"type\", got " + EchoJson(spec));
  }
  return spec["type"].get<std::string>();
}

template <typename T>
T Get(const json& spec, const char* key, const std::string& where) {
  if (!spec.contains(key)) throw UserError(where + ": key '" + key + "' is missing");
  try {
    return spec[key].get<T>();
  } catch (const json::exception&) {
    throw UserError(where + "." + key + " = " + EchoJson(spec[key]) + " has the wrong type");
  }
}

// The steps of a Sequence at `key`, an array (a missing key: none).
const json& StepList(const json& spec, const char* key, const std::string& where) {
  static const json none = json::array();
  if (!spec.contains(key)) return none;
  if (!spec[key].is_array()) throw UserError(where + "." + key + " is not a list of steps");
  return spec[key];
}

// Replace's and Split's pattern: {"String": s} (literal) or {"Regex": r}.
std::shared_ptr<const Regex> Pattern(const json& spec, const std::string& where) {
  const json pattern = spec.value("pattern", json());
  try {
    if (pattern.is_object() && pattern.contains("String")) {
      return std::make_shared<Regex>(Regex::Quote(pattern["String"].get<std::string>()));
    }
    if (pattern.is_object() && pattern.contains("Regex")) {
      return std::make_shared<Regex>(pattern["Regex"].get<std::string>());
    }
  } catch (const std::invalid_argument& e) {
    throw UserError(where + ".pattern: the regex does not compile: " + e.what());
  } catch (const json::exception&) {
  }
  throw UserError(where + ".pattern must be {\"String\": ...} or {\"Regex\": ...}, got " +
                  EchoJson(pattern));
}

std::string ReplaceAll(const Regex& pattern, std::string_view text, std::string_view content) {
  std::string out;
  size_t at = 0;
  for (const auto& [begin, end] : pattern.FindAll(text)) {
    out.append(text.substr(at, begin - at));
    out.append(content);
    at = end;
  }
  out.append(text.substr(at));
  return out;
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

std::string Strip(std::string_view text, bool left, bool right) {
  const std::vector<std::string_view> chars = Utf8Chars(text);
  size_t begin = 0, end = chars.size();
  while (left && begin < end && IsWhitespace(chars[begin])) ++begin;
  while (right && end > begin && IsWhitespace(chars[end - 1])) --end;
  std::string out;
  for (size_t i = begin; i < end; ++i) out += chars[i];
  return out;
}

// UTF-8 with each invalid byte replaced by U+FFFD, as Rust's String::from_utf8_lossy.
std::string Lossy(std::string_view bytes) {
  std::string out;
  for (const std::string_view ch : Utf8Chars(bytes)) {
    const bool valid = ch.size() > 1 || static_cast<unsigned char>(ch[0]) < 0x80;
    out += valid ? std::string(ch) : std::string("\xEF\xBF\xBD");
  }
  return out;
}

// --- Split ---------------------------------------------------------------------------------

enum class SplitBehavior { kIsolated, kRemoved, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Span {
  size_t begin, end;
  bool is_match;
};

std::vector<Span> Spans(const Regex& pattern, std::string_view text, bool invert) {
  std::vector<Span> spans;
  size_t at = 0;
  for (const auto& [begin, end] : pattern.FindAll(text)) {
    if (begin > at) spans.push_back({at, begin, invert});
    spans.push_back({begin, end, !invert});
    at = end;
  }
  if (at < text.size()) spans.push_back({at, text.size(), invert});
  return spans;
}

// The pieces Split's `behavior` makes of `spans`, as (begin, end).
std::vector<std::pair<size_t, size_t>> Arrange(const std::vector<Span>& spans,
                                               SplitBehavior behavior) {
  std::vector<std::pair<size_t, size_t>> out;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Span& s : spans) out.emplace_back(s.begin, s.end);
      break;
    case SplitBehavior::kRemoved:
      for (const Span& s : spans) {
        if (!s.is_match) out.emplace_back(s.begin, s.end);
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !out.empty()) {
          out.back().second = s.end;
        } else {
          out.emplace_back(s.begin, s.end);
        }
        previous_match = s.is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto s = spans.rbegin(); s != spans.rend(); ++s) {
        if (s->is_match && !previous_match && !out.empty()) {
          out.back().first = s->begin;
        } else {
          out.emplace_back(s->begin, s->end);
        }
        previous_match = s->is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
    case SplitBehavior::kContiguous:
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !out.empty()) {
          out.back().second = s.end;
        } else {
          out.emplace_back(s.begin, s.end);
        }
        previous_match = s.is_match;
      }
      break;
  }
  return out;
}

std::vector<Piece> SplitPieces(const std::vector<Piece>& pieces, const Regex& pattern,
                               SplitBehavior behavior, bool invert) {
  std::vector<Piece> out;
  for (const Piece& piece : pieces) {
    for (const auto& [begin, end] : Arrange(Spans(pattern, piece.text, invert), behavior)) {
      out.push_back({piece.text.substr(begin, end - begin), piece.at_start && begin == 0});
    }
  }
  return out;
}

SplitBehavior ParseBehavior(const json& spec, const std::string& where) {
  const std::string name = Get<std::string>(spec, "behavior", where);
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  throw UserError(where + ".behavior '" + name +
                  "' is not one of Isolated, Removed, MergedWithPrevious, MergedWithNext, "
                  "Contiguous");
}

// Metaspace's prepend_scheme, with the older add_prefix_space key read as "always"/"never".
std::string PrependScheme(const json& spec, const std::string& where) {
  if (spec.contains("prepend_scheme")) {
    const std::string scheme = Get<std::string>(spec, "prepend_scheme", where);
    if (scheme != "always" && scheme != "first" && scheme != "never") {
      throw UserError(where + ".prepend_scheme '" + scheme +
                      "' is not one of always, first, never");
    }
    return scheme;
  }
  return spec.value("add_prefix_space", true) ? "always" : "never";
}

}  // namespace

void CheckSequenceDepth(int depth, const std::string& where) {
  if (depth <= kMaxSequenceDepth) return;
  // `where` ("FILE: normalizer.normalizers[0]...") grows by a key per level; the file and the
  // first key say enough.
  const std::string top = where.substr(0, where.find('.', where.rfind(": ")));
  throw UserError(top + ": Sequence steps nested deeper than " + std::to_string(kMaxSequenceDepth) +
                  " levels (tune's limit; published tokenizer.json files nest one); the file is "
                  "damaged or not a real tokenizer");
}

Normalizer::Normalizer(const json& spec, const std::string& where, int depth) {
  if (spec.is_null()) return;
  const std::string type = TypeOf(spec, where);
  if (type == "Sequence") {
    CheckSequenceDepth(depth + 1, where);
    const json& list = StepList(spec, "normalizers", where);
    for (size_t i = 0; i < list.size(); ++i) {
      std::shared_ptr<const Normalizer> inner(
          new Normalizer(list[i], where + ".normalizers[" + std::to_string(i) + "]", depth + 1));
      steps_.push_back([inner](std::string text) { return inner->Apply(std::move(text)); });
    }
  } else if (type == "NFC" || type == "NFKC" || type == "NFD" || type == "NFKD") {
    const NormalForm form = type == "NFC"    ? NormalForm::kNfc
                            : type == "NFKC" ? NormalForm::kNfkc
                            : type == "NFD"  ? NormalForm::kNfd
                                             : NormalForm::kNfkd;
    steps_.push_back([form](std::string text) { return Normalize(text, form); });
  } else if (type == "Lowercase") {
    steps_.push_back([](std::string text) { return Lowercase(text); });
  } else if (type == "Prepend") {
    const std::string prepend = Get<std::string>(spec, "prepend", where);
    steps_.push_back([prepend](std::string text) { return text.empty() ? text : prepend + text; });
  } else if (type == "Replace") {
    const auto pattern = Pattern(spec, where);
    const std::string content = Get<std::string>(spec, "content", where);
    steps_.push_back(
        [pattern, content](std::string text) { return ReplaceAll(*pattern, text, content); });
  } else if (type == "Strip") {
    const bool left = spec.value("strip_left", true), right = spec.value("strip_right", true);
    steps_.push_back([left, right](std::string text) { return Strip(text, left, right); });
  } else {
    Unsupported(where, "normalizer", type,
                "NFC, NFKC, NFD, NFKD, Lowercase, Prepend, Replace, Strip and Sequence");
  }
}

std::string Normalizer::Apply(std::string text) const {
  for (const auto& step : steps_) text = step(std::move(text));
  return text;
}

PreTokenizer::PreTokenizer(const json& spec, const std::string& where, int depth) {
  if (spec.is_null()) return;
  const std::string type = TypeOf(spec, where);
  if (type == "Sequence") {
    CheckSequenceDepth(depth + 1, where);
    const json& list = StepList(spec, "pretokenizers", where);
    for (size_t i = 0; i < list.size(); ++i) {
      std::shared_ptr<const PreTokenizer> inner(new PreTokenizer(
          list[i], where + ".pretokenizers[" + std::to_string(i) + "]", depth + 1));
      steps_.push_back([inner](std::vector<Piece> pieces) { return inner->Apply(pieces); });
    }
  } else if (type == "Split") {
    const auto pattern = Pattern(spec, where);
    const SplitBehavior behavior = ParseBehavior(spec, where);
    const bool invert = spec.value("invert", false);
    steps_.push_back([pattern, behavior, invert](std::vector<Piece> pieces) {
      return SplitPieces(pieces, *pattern, behavior, invert);
    });
  } else if (type == "ByteLevel") {
    const bool add_prefix_space = spec.value("add_prefix_space", true);
    std::shared_ptr<const Regex> split;
    if (spec.value("use_regex", true)) split = std::make_shared<Regex>(kByteLevelSplit);
    steps_.push_back([add_prefix_space, split](std::vector<Piece> pieces) {
      for (Piece& piece : pieces) {
        if (add_prefix_space && !StartsWith(piece.text, " ")) piece.text = " " + piece.text;
      }
      if (split) pieces = SplitPieces(pieces, *split, SplitBehavior::kIsolated, false);
      for (Piece& piece : pieces) piece.text = ToByteLevel(piece.text);
      return pieces;
    });
  } else if (type == "Metaspace") {
    const std::string replacement = Get<std::string>(spec, "replacement", where);
    const std::string scheme = PrependScheme(spec, where);
    const bool split = spec.value("split", true);
    const auto marker = std::make_shared<Regex>(Regex::Quote(replacement));
    const auto space = std::make_shared<Regex>(" ");
    steps_.push_back([replacement, scheme, split, marker, space](std::vector<Piece> pieces) {
      for (Piece& piece : pieces) {
        piece.text = ReplaceAll(*space, piece.text, replacement);
        const bool prepend = scheme == "always" || (scheme == "first" && piece.at_start);
        if (prepend && !StartsWith(piece.text, replacement)) piece.text = replacement + piece.text;
      }
      if (split) pieces = SplitPieces(pieces, *marker, SplitBehavior::kMergedWithNext, false);
      return pieces;
    });
  } else {
    Unsupported(where, "pre_tokenizer", type, "Split, ByteLevel, Metaspace and Sequence");
  }
}

std::vector<Piece> PreTokenizer::Apply(std::vector<Piece> pieces) const {
  for (const auto& step : steps_) pieces = step(std::move(pieces));
  std::erase_if(pieces, [](const Piece& piece) { return piece.text.empty(); });
  return pieces;
}

Decoder::Decoder(const json& spec, const std::string& where, int depth) {
  if (spec.is_null()) return;
  using Tokens = std::vector<std::string>;
  const std::string type = TypeOf(spec, where);
  if (type == "Sequence") {
    CheckSequenceDepth(depth + 1, where);
    const json& list = StepList(spec, "decoders", where);
    for (size_t i = 0; i < list.size(); ++i) {
      std::shared_ptr<const Decoder> inner(
          new Decoder(list[i], where + ".decoders[" + std::to_string(i) + "]", depth + 1));
      steps_.push_back([inner](Tokens tokens) {
        for (const auto& step : inner->steps_) tokens = step(std::move(tokens));
        return tokens;
      });
    }
  } else if (type == "ByteLevel") {
    steps_.push_back([](Tokens tokens) {
      std::string bytes;
      for (const std::string& token : tokens) bytes += FromByteLevel(token);
      return Tokens{Lossy(bytes)};
    });
  } else if (type == "Metaspace") {
    const std::string replacement = Get<std::string>(spec, "replacement", where);
    const bool strip_first = PrependScheme(spec, where) != "never";
    const auto marker = std::make_shared<Regex>(Regex::Quote(replacement));
    steps_.push_back([marker, strip_first](Tokens tokens) {
      for (size_t i = 0; i < tokens.size(); ++i) {
        tokens[i] = ReplaceAll(*marker, tokens[i], " ");
        if (i == 0 && strip_first && StartsWith(tokens[i], " ")) tokens[i].erase(0, 1);
      }
      return tokens;
    });
  } else if (type == "Replace") {
    const auto pattern = Pattern(spec, where);
    const std::string content = Get<std::string>(spec, "content", where);
    steps_.push_back([pattern, content](Tokens tokens) {
      for (std::string& token : tokens) token = ReplaceAll(*pattern, token, content);
      return tokens;
    });
  } else if (type == "ByteFallback") {
    steps_.push_back([](Tokens tokens) {
      Tokens out;
      std::string bytes;
      const auto flush = [&] {
        if (bytes.empty()) return;
        const std::vector<std::string_view> chars = Utf8Chars(bytes);
        bool valid = true;
        for (const std::string_view ch : chars) {
          valid = valid && (ch.size() > 1 || static_cast<unsigned char>(ch[0]) < 0x80);
        }
        if (valid) {
          out.push_back(bytes);
        } else {
          for (size_t i = 0; i < bytes.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
        }
        bytes.clear();
      };
      for (const std::string& token : tokens) {
        unsigned value = 0;
        if (token.size() == 6 && StartsWith(token, "<0x") && token[5] == '>' &&
            std::sscanf(token.c_str() + 3, "%2X", &value) == 1) {
          bytes.push_back(static_cast<char>(value));
        } else {
          flush();
          out.push_back(token);
        }
      }
      flush();
      return out;
    });
  } else if (type == "Fuse") {
    steps_.push_back([](Tokens tokens) {
      std::string all;
      for (const std::string& token : tokens) all += token;
      return Tokens{all};
    });
  } else if (type == "Strip") {
    const std::string content = Get<std::string>(spec, "content", where);
    const size_t start = Get<size_t>(spec, "start", where), stop = Get<size_t>(spec, "stop", where);
    steps_.push_back([content, start, stop](Tokens tokens) {
      for (std::string& token : tokens) {
        for (size_t i = 0; i < start && !content.empty() && StartsWith(token, content); ++i) {
          token.erase(0, content.size());
        }
        for (size_t i = 0;
             i < stop && !content.empty() && token.size() >= content.size() &&
             token.compare(token.size() - content.size(), content.size(), content) == 0;
             ++i) {
          token.erase(token.size() - content.size());
        }
      }
      return tokens;
    });
  } else {
    Unsupported(where, "decoder", type,
                "ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip and Sequence");
  }
}

std::string Decoder::Apply(std::vector<std::string> tokens) const {
  for (const auto& step : steps_) tokens = step(std::move(tokens));
  std::string text;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (steps_.empty() && i > 0) text += ' ';  // no decoder: tokens joined by spaces
    text += tokens[i];
  }
  return text;
}

}  // namespace tune::tokenizer_json
