#include "config/run_config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include "config/sweep_space.h"
#include "plugin_host/plugin_host.h"
#include "registry/registry.h"
#include "util/counted.h"
#include "util/echo.h"
#include "util/error.h"
#include "util/names.h"
#include "util/number_text.h"
#include "util/suggest.h"
#include "util/toml_text.h"

namespace tune {
namespace fs = std::filesystem;

namespace {

// Overrides parse under a source path with this prefix, so errors can name the argument.
constexpr std::string_view kOverrideSource = "argument '";

std::string OneLine(std::string_view text) {
  std::string line(text);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return line;
}

// "run.toml:12:3" for file positions, "argument 'adapter.rank=4'" for overrides.
std::string Where(const toml::source_region& source, const fs::path& file) {
  const std::string path = source.path ? *source.path : file.string();
  if (std::string_view(path).starts_with(kOverrideSource)) return path;
  if (source.begin.line == 0) return path;
  return path + ":" + std::to_string(source.begin.line) + ":" + std::to_string(source.begin.column);
}

std::string Describe(const toml::node& node) {
  if (const toml::value<std::string>* text = node.as_string()) return "\"" + text->get() + "\"";
  std::ostringstream out;
  node.visit([&](const auto& concrete) { out << concrete; });
  std::string text = OneLine(out.str());
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

std::string TypeOf(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    default:
      return "date/time";
  }
}

std::string ArticleFor(OptionType type) {
  return type == OptionType::kInt || type == OptionType::kStringList ? "an " : "a ";
}

// Reads and checks one value against its spec. `key` is the dotted key used in messages.
OptionValue CheckValue(const OptionSpec& spec, const toml::node& node, const std::string& key,
                       const fs::path& file) {
  const std::string where = Where(node.source(), file);
  auto fail = [&](const std::string& what) -> UserError { return UserError(where + ": " + what); };
  auto wrong_type = [&]() -> UserError {
    return fail("'" + key + "' must be " + ArticleFor(spec.type) +
                std::string(OptionTypeName(spec.type)) + ", got " + TypeOf(node) + " " +
                Describe(node));
  };
  auto check_range = [&](double value) {
    const bool low = spec.min_exclusive ? value <= spec.min : value < spec.min;
    const bool high = spec.max_exclusive ? value >= spec.max : value > spec.max;
    if (low || high || std::isnan(value)) {
      throw fail("'" + key + "' = " + Describe(node) + " is out of range: expected " +
                 ArticleFor(spec.type) + std::string(OptionTypeName(spec.type)) + " in " +
                 RangeText(spec));
    }
  };
  switch (spec.type) {
    case OptionType::kBool:
      if (!node.is_boolean()) throw wrong_type();
      return node.as_boolean()->get();
    case OptionType::kInt: {
      if (!node.is_integer()) throw wrong_type();
      const int64_t value = node.as_integer()->get();
      check_range(static_cast<double>(value));
      return value;
    }
    case OptionType::kFloat: {
      double value = 0;
      if (node.is_floating_point()) {
        value = node.as_floating_point()->get();
      } else if (node.is_integer()) {
        value = static_cast<double>(node.as_integer()->get());
      } else {
        throw wrong_type();
      }
      check_range(value);
      return value;
    }
    case OptionType::kString: {
      if (!node.is_string()) throw wrong_type();
      const std::string& value = node.as_string()->get();
      if (!spec.choices.empty() &&
          std::find(spec.choices.begin(), spec.choices.end(), value) == spec.choices.end()) {
        throw fail("'" + key + "' = \"" + value + "\" is not one of " + JoinNames(spec.choices) +
                   DidYouMean(value, spec.choices));
      }
      return value;
    }
    case OptionType::kStringList: {
      const toml::array* array = node.as_array();
      if (array == nullptr) throw wrong_type();
      std::vector<std::string> values;
      for (const toml::node& item : *array) {
        if (!item.is_string()) {
          throw UserError(Where(item.source(), file) + ": every item of '" + key +
                          "' must be a string, got " + TypeOf(item) + " " + Describe(item));
        }
        values.push_back(item.as_string()->get());
      }
      return values;
    }
  }
  return {};
}

// Inserts a resolved value into the TOML document `tune validate` prints.
void InsertResolved(toml::table& table, const std::string& name, const OptionValue& value) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          toml::array array;
          for (const std::string& item : v) array.push_back(item);
          table.insert_or_assign(name, std::move(array));
        } else if constexpr (!std::is_same_v<T, std::monostate>) {
          table.insert_or_assign(name, v);
        }
      },
      value);
}

// One section of the file being checked against the specs that apply to it.
struct SectionCheck {
  const toml::table* table = nullptr;  // null when the section is absent
  std::string prefix;                  // "adapter", "metrics[0]", "" for the top level
  std::vector<OptionSpec> specs;
  std::vector<std::string> subsections;  // keys handled elsewhere (tables inside this section)
};

std::string Dotted(const std::string& prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
}

// Checks every key the user wrote, fills defaults, and records the result in `resolved`.
Options ResolveSection(const SectionCheck& check, const fs::path& file,
                       const toml::source_region& section_source, toml::table& resolved) {
  std::vector<std::string> known;
  for (const OptionSpec& spec : check.specs) known.push_back(spec.name);
  std::vector<std::string> suggestions = known;
  suggestions.insert(suggestions.end(), check.subsections.begin(), check.subsections.end());

  Options options;
  if (check.table != nullptr) {
    for (const auto& [key, node] : *check.table) {
      const std::string name(key.str());
      if (std::find(known.begin(), known.end(), name) != known.end()) continue;
      if (std::find(check.subsections.begin(), check.subsections.end(), name) !=
          check.subsections.end()) {
        continue;
      }
      std::vector<std::string> dotted;
      for (const std::string& s : suggestions) dotted.push_back(Dotted(check.prefix, s));
      const toml::source_region& source = key.source().begin.line ? key.source() : node.source();
      throw UserError(Where(source, file) + ": unknown key '" + Dotted(check.prefix, name) + "'" +
                      DidYouMean(Dotted(check.prefix, name), dotted));
    }
  }
  for (const OptionSpec& spec : check.specs) {
    const toml::node* node = check.table ? check.table->get(spec.name) : nullptr;
    const std::string key = Dotted(check.prefix, spec.name);
    OptionValue value;
    if (node != nullptr) {
      value = CheckValue(spec, *node, key, file);
    } else if (spec.required()) {
      const std::string section = check.prefix.empty() ? "the top level" : "[" + check.prefix + "]";
      throw UserError(Where(section_source, file) + ": missing required key '" + key + "'; add " +
                      spec.name + " = ... to " + section + " (" + spec.help + ")");
    } else {
      value = spec.default_value;
    }
    InsertResolved(resolved, spec.name, value);
    options.Set(spec.name, std::move(value));
  }
  return options;
}

const toml::table* SubTable(const toml::table& parent, std::string_view key,
                            const std::string& dotted, const fs::path& file) {
  const toml::node* node = parent.get(key);
  if (node == nullptr) return nullptr;
  if (!node->is_table()) {
    throw UserError(Where(node->source(), file) + ": '" + dotted + "' must be a table, got " +
                    TypeOf(*node) + " " + Describe(*node));
  }
  return node->as_table();
}

bool IsDigits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Slurm's time formats (sbatch --time): M, M:S, H:M:S, D-H, D-H:M, D-H:M:S, each a number.
bool IsSlurmTime(std::string_view text) {
  if (const size_t dash = text.find('-'); dash != std::string_view::npos) {
    if (!IsDigits(text.substr(0, dash))) return false;
    text.remove_prefix(dash + 1);
  }
  for (int parts = 1; parts <= 3; ++parts) {
    const size_t colon = text.find(':');
    if (!IsDigits(text.substr(0, colon))) return false;
    if (colon == std::string_view::npos) return true;
    text.remove_prefix(colon + 1);
  }
  return false;
}

// Slurm's memory sizes (sbatch --mem): a number of megabytes, or one with K, M, G or T.
bool IsSlurmMemory(std::string_view text) {
  if (!text.empty() && std::string_view("KMGT").find(text.back()) != std::string_view::npos) {
    text.remove_suffix(1);
  }
  return IsDigits(text);
}

// [sweep.executor]: checked here, so that a typo fails before anything is submitted; what only
// the cluster can tell (a partition it does not have) is checked by the Slurm runner, which names
// the key with `wheres`.
ExecutorConfig ResolveExecutor(const toml::table& sweep_table, int64_t parallel,
                               const fs::path& file, toml::table& sweep_out) {
  const toml::table* table = SubTable(sweep_table, "executor", "sweep.executor", file);
  toml::table out;
  const Options options = ResolveSection(
      {table,
       "sweep.executor",
       {OptionSpec::String("kind", "local", "Where trials run").Choices({"local", "slurm"}),
        OptionSpec::String("partition", "", "Slurm partition; default: the cluster's default"),
        OptionSpec::String("gres", "", "Generic resources per trial, e.g. \"gpu:1\""),
        OptionSpec::String("time", "", "Time limit per trial, e.g. \"02:00:00\""),
        OptionSpec::Int("cpus_per_task", 1, "Cores per trial").Range(1, 65536),
        OptionSpec::String("mem", "", "Memory per trial, e.g. \"64G\""),
        OptionSpec::Int("array_parallelism", parallel,
                        "Trials at once (sbatch --array=...%N); default: sweep.parallel")
            .Range(1, 100000),
        OptionSpec::Int("max_retries", 2,
                        "More attempts per trial after a failure that is not its own (a killed "
                        "or lost node, a cancellation) or a preemption")
            .Range(0, 100),
        OptionSpec::StringList("sbatch_args", {}, "Further sbatch options, as they are"),
        OptionSpec::Int("heartbeat_timeout_seconds", 120,
                        "A running trial silent this long is failed and retried")
            .Range(5, 7 * 86400),
        OptionSpec::Int("signal_seconds", 120,
                        "Seconds before the time limit at which Slurm asks the trial to "
                        "checkpoint and requeue")
            .Range(0, 86400),
        OptionSpec::String("driver_address", "",
                           "Host name the nodes reach tune sweep at; default: this host's")},
       {}},
      file, table ? table->source() : sweep_table.source(), out);
  ExecutorConfig executor;
  executor.kind = options.String("kind");
  executor.partition = options.String("partition");
  executor.gres = options.String("gres");
  executor.time = options.String("time");
  executor.cpus_per_task = options.Int("cpus_per_task");
  executor.mem = options.String("mem");
  executor.array_parallelism = options.Int("array_parallelism");
  executor.max_retries = options.Int("max_retries");
  executor.sbatch_args = options.StringList("sbatch_args");
  executor.heartbeat_timeout_seconds = options.Int("heartbeat_timeout_seconds");
  executor.signal_seconds = options.Int("signal_seconds");
  executor.driver_address = options.String("driver_address");
  if (table != nullptr) {
    executor.wheres[""] = Where(table->source(), file);
    for (const auto& [key, node] : *table) {
      executor.wheres[std::string(key.str())] = Where(node.source(), file);
    }
  }
  const auto refuse = [&](const std::string& key, const std::string& why) {
    throw UserError(executor.wheres[key] + ": 'sweep.executor." + key + "' " + why);
  };
  if (executor.kind == "local") {
    // One way to say each thing: a Slurm setting on a local sweep would be silently ignored.
    for (const auto& [key, where] : executor.wheres) {
      if (!key.empty() && key != "kind") {
        refuse(key,
               "is a Slurm setting and this sweep runs locally; set kind = \"slurm\" or "
               "remove it");
      }
    }
  }
  if (!executor.time.empty() && !IsSlurmTime(executor.time)) {
    refuse("time", "= \"" + Echo(executor.time, 40) +
                       "\" is not a Slurm time limit; write minutes (\"90\"), \"HH:MM:SS\" or "
                       "\"D-HH:MM:SS\"");
  }
  if (!executor.mem.empty() && !IsSlurmMemory(executor.mem)) {
    refuse("mem", "= \"" + Echo(executor.mem, 40) +
                      "\" is not a Slurm memory size; write megabytes (\"4000\") or a number "
                      "with K, M, G or T (\"64G\")");
  }
  for (const std::string& arg : executor.sbatch_args) {
    // The array, its script and its output are tune's: one of them given twice would win silently.
    for (const char* own : {"--array", "-a", "--output", "-o", "--error", "-e", "--parsable",
                            "--wrap", "--signal", "--requeue", "--no-requeue"}) {
      if (arg == own || arg.starts_with(std::string(own) + "=") ||
          (std::string_view(own).size() == 2 && arg.starts_with(own))) {
        refuse("sbatch_args", "sets " + std::string(own) +
                                  ", which tune sets for its trials; remove it (the keys of "
                                  "[sweep.executor] set the rest)");
      }
    }
  }
  sweep_out.insert_or_assign("executor", std::move(out));
  return executor;
}

// [dataset.quality]: the filters a run applies to its training file and the gates it must pass
// (data/quality.h finds what they act on). Adds the table to resolved["dataset"] and its keys to
// `specs_by_path`, so sweeps may vary them.
DataQualityConfig ResolveDataQuality(const toml::table& document, const fs::path& file,
                                     std::map<std::string, OptionSpec>& specs_by_path,
                                     toml::table& resolved) {
  const toml::table* dataset = SubTable(document, "dataset", "dataset", file);
  const toml::table* table =
      dataset != nullptr ? SubTable(*dataset, "quality", "dataset.quality", file) : nullptr;
  const std::vector<OptionSpec> specs = {
      OptionSpec::String("dedup", "off",
                         "Drop exact duplicates (all but the first), near-duplicates too, or none")
          .Choices({"off", "exact", "near"}),
      OptionSpec::Float("near_threshold", 0.8,
                        "Jaccard similarity of word 3-shingles from which rows are near-duplicates")
          .Range(0, 1, true, false),
      OptionSpec::Bool("drop_conflicts", false,
                       "Drop every row of a prompt that has different completions"),
      OptionSpec::Bool("drop_empty", false, "Drop rows whose prompt or completion is blank"),
      OptionSpec::Int("max_tokens", 0,
                      "Drop rows longer than this many tokens (prompt and completion); 0: none")
          .Range(0, 1 << 24),
      OptionSpec::Float("max_duplicate_fraction", 1.0,
                        "Gate: stop before training when more of the rows kept are duplicates "
                        "(exact or near)")
          .Range(0, 1),
      OptionSpec::Int("max_conflicts", -1,
                      "Gate: stop before training when the rows kept hold more conflicts; -1: no "
                      "gate")
          .Range(-1, 1e12)};
  toml::table out;
  const Options options = ResolveSection({table, "dataset.quality", specs, {}}, file,
                                         table ? table->source() : toml::source_region{}, out);
  for (const OptionSpec& spec : specs) specs_by_path[Dotted("dataset.quality", spec.name)] = spec;
  resolved["dataset"].as_table()->insert_or_assign("quality", std::move(out));
  DataQualityConfig quality;
  quality.dedup = options.String("dedup");
  quality.near_threshold = options.Float("near_threshold");
  quality.drop_conflicts = options.Bool("drop_conflicts");
  quality.drop_empty = options.Bool("drop_empty");
  quality.max_tokens = options.Int("max_tokens");
  quality.max_duplicate_fraction = options.Float("max_duplicate_fraction");
  quality.max_conflicts = options.Int("max_conflicts");
  return quality;
}

enum class PathIs { kFolder, kFile };

// Refuses a path the user wrote that does not exist or is the wrong kind, pointing at where it
// was written.
void RequirePath(const toml::table& document, const std::string& dotted, const fs::path& resolved,
                 PathIs kind, const fs::path& file) {
  const toml::node* node = document.at_path(dotted).node();
  const std::string where = Where(node ? node->source() : toml::source_region{}, file) + ": '" +
                            dotted + "' names " + resolved.string();
  std::error_code ec;
  const fs::file_status status = fs::status(resolved, ec);
  if (!fs::exists(status)) {
    throw UserError(where +
                    ", which does not exist; paths written in the file are relative to its "
                    "folder, paths given as key=value to the current folder");
  }
  if (kind == PathIs::kFolder && !fs::is_directory(status)) {
    throw UserError(where + ", which is a file; give the folder that holds it (" +
                    resolved.parent_path().string() + ")");
  }
  if (kind == PathIs::kFile && fs::is_directory(status)) {
    throw UserError(where + ", which is a folder; give the data file itself (a .jsonl file)");
  }
}

// The dotted names (section.key, at least one dot) an expression refers to, such as
// "adapter.rank" in "2 * adapter.rank". Numbers like 1.5e-3 are not names.
std::vector<std::string> DottedNames(std::string_view expression) {
  std::vector<std::string> names;
  auto starts_name = [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; };
  auto in_name = [&](char c) { return starts_name(c) || (c >= '0' && c <= '9') || c == '.'; };
  size_t i = 0;
  while (i < expression.size()) {
    const bool after_word = i > 0 && (in_name(expression[i - 1]) ||
                                      (expression[i - 1] >= 'A' && expression[i - 1] <= 'Z'));
    if (!starts_name(expression[i]) || after_word) {
      ++i;
      continue;
    }
    const size_t start = i;
    while (i < expression.size() && in_name(expression[i])) ++i;
    const std::string_view word = expression.substr(start, i - start);
    if (word.find('.') != std::string_view::npos) names.emplace_back(word);
  }
  return names;
}

// Keeps only the options a plugin declared.
Options PluginOptions(const Options& all, const PluginInfo& info) {
  Options options;
  for (const OptionSpec& spec : info.options) {
    options.Set(spec.name, all.values().at(spec.name));
  }
  return options;
}

const std::vector<std::string> kTopLevelKeys = {"name",      "model",    "dataset", "adapter",
                                                "optimizer", "train",    "eval",    "metrics",
                                                "sweep",     "registry", "plugins"};

}  // namespace

struct RunFile::Impl {
  fs::path file;
  toml::table document;

  // The path `dotted` holds: relative to the run file's folder when written in the file, to the
  // current folder when given as key=value on the command line.
  fs::path ResolvePath(const std::string& dotted, const std::string& path) const {
    if (fs::path(path).is_absolute()) return path;
    const toml::node* node = document.at_path(dotted).node();
    const bool typed = node != nullptr && node->source().path &&
                       std::string_view(*node->source().path).starts_with(kOverrideSource);
    return typed ? fs::absolute(path).lexically_normal() : file.parent_path() / path;
  }
};

namespace {

// "1,000,000,000,000 points (100 x 100 x 100 x 100 x 100 x 100)": a grid's size as the product it
// is, never by listing it.
std::string GridSizeText(const SweepConfig& sweep) {
  std::string factors;
  for (const SweepParameter& p : sweep.parameters) {
    if (p.kind == SweepParameter::Kind::kExpression) continue;
    factors += (factors.empty() ? "" : " x ") + std::to_string(p.values.size());
  }
  const int64_t size = GridSize(sweep);
  return (size == INT64_MAX ? "more than " + Grouped(size) : Grouped(size)) + " points (" +
         factors + ")";
}

}  // namespace

namespace {

void ApplyOverride(toml::table& document, const std::string& assignment) {
  const std::string source = std::string(kOverrideSource) + assignment + "'";
  const size_t equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0) {
    throw UserError(source + ": expected key=value, for example adapter.rank=16");
  }
  const std::string key = assignment.substr(0, equals);
  const std::string text = assignment.substr(equals + 1);

  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  toml::table* table = &document;
  std::string walked;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    walked = Dotted(walked, parts[i]);
    toml::node* node = table->get(parts[i]);
    if (node == nullptr) {
      table = table->insert(parts[i], toml::table{}).first->second.as_table();
    } else if (node->is_table()) {
      table = node->as_table();
    } else {
      throw UserError(source + ": '" + walked + "' is " + TypeOf(*node) +
                      ", not a table; this key cannot be overridden from the command line");
    }
  }
  // The value is TOML when it parses as TOML, so adapter.rank=16 is an integer; otherwise it is
  // taken as a bare string, so train.device=cpu needs no quotes.
  // Either way the value is parsed under the argument's name, so errors point at the argument.
  toml::table holder;
  try {
    holder = toml::parse("value = " + text, source);
  } catch (const toml::parse_error&) {
    std::string quoted = "\"";
    for (char c : text) {
      if (c == '"' || c == '\\') {
        quoted += '\\';
        quoted += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char escaped[8];
        std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
        quoted += escaped;
      } else {
        quoted += c;
      }
    }
    holder = toml::parse("value = " + quoted + "\"", source);
  }
  table->insert_or_assign(parts.back(), std::move(*holder.get("value")));
}

}  // namespace

RunFile RunFile::Read(const fs::path& file, std::span<const std::string> overrides) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    throw UserError(file.string() + ": no such file; give the path of a run or sweep file (.toml)");
  }
  auto impl = std::make_shared<Impl>();
  impl->file = file;
  try {
    impl->document = toml::parse_file(file.string());
  } catch (const toml::parse_error& error) {
    throw UserError(Where(error.source(), file) +
                    ": invalid TOML: " + OneLine(error.description()));
  }
  for (const std::string& assignment : overrides) ApplyOverride(impl->document, assignment);
  return RunFile(std::move(impl));
}

std::vector<fs::path> RunFile::PluginPaths() const {
  const toml::table* section = SubTable(impl_->document, "plugins", "plugins", impl_->file);
  toml::table scratch;
  const Options options = ResolveSection(
      {section,
       "plugins",
       {OptionSpec::StringList("paths", {}, "Extra folders or files to load plugins from.")},
       {}},
      impl_->file, section ? section->source() : toml::source_region{}, scratch);
  std::vector<fs::path> paths;
  for (const std::string& path : options.StringList("paths")) {
    paths.push_back(impl_->ResolvePath("plugins.paths", path));
  }
  return paths;
}

RunConfig RunFile::Resolve(const PluginHost& plugins) const {
  const fs::path& file = impl_->file;
  const toml::table& document = impl_->document;
  RunConfig config;
  config.file = file;
  toml::table resolved;
  // Specs of every resolved key by dotted path, so sweep parameters can be checked against them.
  std::map<std::string, OptionSpec> specs_by_path;

  auto section = [&](const std::string& name, std::vector<OptionSpec> specs,
                     std::vector<std::string> subsections = {}) {
    const toml::table* table = SubTable(document, name, name, file);
    SectionCheck check{table, name, std::move(specs), std::move(subsections)};
    toml::table out;
    Options options =
        ResolveSection(check, file, table ? table->source() : toml::source_region{}, out);
    for (const OptionSpec& spec : check.specs) specs_by_path[Dotted(name, spec.name)] = spec;
    resolved.insert_or_assign(name, std::move(out));
    return options;
  };

  // A section that names a plugin: tune's own keys plus the plugin's declared options.
  auto plugin_section =
      [&](const std::string& name, PluginKind kind, const std::string& plugin_key,
          const std::string& fallback, std::vector<OptionSpec> host_specs, const toml::table* table,
          const std::string& prefix, toml::table& out,
          std::vector<std::string> subsections = {}) -> std::pair<Options, const PluginInfo*> {
    std::string plugin = fallback;
    toml::source_region plugin_source = table ? table->source() : toml::source_region{};
    if (table != nullptr) {
      if (const toml::node* node = table->get(plugin_key)) {
        const OptionSpec spec = OptionSpec::String(plugin_key, "", "");
        plugin = std::get<std::string>(CheckValue(spec, *node, Dotted(prefix, plugin_key), file));
        plugin_source = node->source();
      }
    }
    const LoadedPlugin* loaded = plugins.Find(kind, plugin);
    if (loaded == nullptr) {
      const std::vector<std::string> names = plugins.Names(kind);
      std::string message = Where(plugin_source, file) + ": unknown " +
                            std::string(PluginKindName(kind)) + " plugin '" + plugin + "' for '" +
                            Dotted(prefix, plugin_key) + "'" + DidYouMean(plugin, names) +
                            "; installed: " + (names.empty() ? "none" : JoinNames(names));
      if (!plugins.failures().empty())
        message += " (some plugins failed to load: see `tune plugins`)";
      throw UserError(message);
    }
    std::vector<OptionSpec> specs = std::move(host_specs);
    specs.insert(specs.begin(), OptionSpec::String(plugin_key, fallback, "Plugin name."));
    for (const OptionSpec& spec : loaded->info().options) {
      for (const OptionSpec& host : specs) {
        if (host.name == spec.name) {
          throw UserError(std::string(PluginKindName(kind)) + " plugin '" + plugin + "' (" +
                          loaded->file.string() + ") declares option '" + spec.name +
                          "', which tune already uses in [" + name + "]; rename it in the plugin");
        }
      }
      specs.push_back(spec);
    }
    SectionCheck check{table, prefix, specs, std::move(subsections)};
    Options options =
        ResolveSection(check, file, table ? table->source() : toml::source_region{}, out);
    if (prefix == name) {
      for (const OptionSpec& spec : specs) specs_by_path[Dotted(name, spec.name)] = spec;
    }
    return {std::move(options), &loaded->info()};
  };

  auto top_level_section = [&](const std::string& name, PluginKind kind,
                               const std::string& plugin_key, const std::string& fallback,
                               std::vector<OptionSpec> host_specs,
                               std::vector<std::string> subsections = {}) {
    const toml::table* table = SubTable(document, name, name, file);
    toml::table out;
    auto result = plugin_section(name, kind, plugin_key, fallback, std::move(host_specs), table,
                                 name, out, std::move(subsections));
    resolved.insert_or_assign(name, std::move(out));
    return result;
  };

  // Top level.
  {
    for (const auto& [key, node] : document) {
      const std::string name(key.str());
      if (std::find(kTopLevelKeys.begin(), kTopLevelKeys.end(), name) == kTopLevelKeys.end()) {
        throw UserError(Where(key.source().begin.line ? key.source() : node.source(), file) +
                        ": unknown key '" + name + "'" + DidYouMean(name, kTopLevelKeys));
      }
    }
    const toml::node* name_node = document.get("name");
    if (name_node != nullptr) {
      config.name = std::get<std::string>(
          CheckValue(OptionSpec::String("name", "", ""), *name_node, "name", file));
      if (!IsValidName(config.name)) {
        throw UserError(Where(name_node->source(), file) + ": 'name' = \"" + config.name +
                        "\" is not a valid adapter name; use lower-case letters, digits, '.', "
                        "'_' and '-', starting with a letter or digit, at most 64 characters");
      }
    } else {
      config.name = file.stem().string();
      if (!IsValidName(config.name)) {
        throw UserError(file.string() + ": the file name '" + config.name +
                        "' is not a valid adapter name; add name = \"...\" at the top level");
      }
    }
    resolved.insert_or_assign("name", config.name);
  }

  {
    auto [options, info] = top_level_section(
        "model", PluginKind::kModel, "plugin", "llama",
        {OptionSpec::String("path", {}, "Model directory in Hugging Face layout").Required()});
    config.model = {std::string(info->name),
                    impl_->ResolvePath("model.path", options.String("path")),
                    PluginOptions(options, *info)};
    RequirePath(document, "model.path", config.model.path, PathIs::kFolder, file);
  }
  {
    auto [options, info] = top_level_section(
        "dataset", PluginKind::kDataset, "plugin", "jsonl",
        {OptionSpec::String("path", {}, "Training data file").Required(),
         OptionSpec::String("name", "",
                            "The registry's name for the training file's versions; empty: its "
                            "folder and file name, such as clean-task"),
         OptionSpec::String("eval_path", "", "Evaluation data file; empty: split by eval_fraction"),
         OptionSpec::Float("eval_fraction", 0.1, "Share of examples held out for evaluation")
             .Range(0, 1, false, true),
         OptionSpec::String("on_bad_row", "stop",
                            "A malformed or over-long row stops the run, or is counted and skipped")
             .Choices({"stop", "skip"})},
        {"quality"});
    config.dataset.plugin = info->name;
    config.dataset.name = options.String("name");
    if (!config.dataset.name.empty() && !IsValidName(config.dataset.name)) {
      const toml::node* node = document.at_path("dataset.name").node();
      throw UserError(Where(node ? node->source() : toml::source_region{}, file) +
                      ": dataset.name '" + Echo(config.dataset.name, 64) +
                      "' is not a valid name; use lower-case letters, digits, '.', '_' and '-', "
                      "starting with a letter or digit, at most 64 characters");
    }
    config.dataset.path = impl_->ResolvePath("dataset.path", options.String("path"));
    if (!options.String("eval_path").empty()) {
      config.dataset.eval_path =
          impl_->ResolvePath("dataset.eval_path", options.String("eval_path"));
    }
    config.dataset.eval_fraction = options.Float("eval_fraction");
    config.dataset.skip_bad_rows = options.String("on_bad_row") == "skip";
    RequirePath(document, "dataset.path", config.dataset.path, PathIs::kFile, file);
    if (config.dataset.eval_path) {
      RequirePath(document, "dataset.eval_path", *config.dataset.eval_path, PathIs::kFile, file);
    }
    config.dataset.options = PluginOptions(options, *info);
    config.dataset.quality = ResolveDataQuality(document, file, specs_by_path, resolved);
  }
  {
    auto [options, info] = top_level_section("adapter", PluginKind::kAdapter, "method", "lora", {});
    config.adapter = {info->name, PluginOptions(options, *info)};
  }
  {
    auto [options, info] = top_level_section(
        "optimizer", PluginKind::kOptimizer, "plugin", "adamw",
        {OptionSpec::Float("lr", 2e-4, "Peak learning rate").Range(0, 10, true, false),
         OptionSpec::Float("weight_decay", 0.0, "Decoupled weight decay").Range(0, 1e9),
         OptionSpec::String("schedule", "cosine", "Learning-rate schedule after warm-up")
             .Choices({"constant", "linear", "cosine"}),
         OptionSpec::Int("warmup_steps", 0, "Steps of linear warm-up from 0").Range(0, 1e12)});
    config.optimizer = {info->name,
                        options.Float("lr"),
                        options.Float("weight_decay"),
                        options.String("schedule"),
                        options.Int("warmup_steps"),
                        PluginOptions(options, *info)};
  }
  {
    const Options options = section(
        "train",
        {OptionSpec::Int("steps", 200, "Optimizer steps").Range(1, 1e12),
         OptionSpec::Int("batch_size", 8, "Examples per step").Range(1, 1 << 20),
         OptionSpec::Int("seq_len", 128, "Tokens per example").Range(1, 1 << 24),
         OptionSpec::Int("seed", 0, "Seed for initialisation, dropout and data order")
             .Range(0, 9.2e18),
         OptionSpec::String("device", "auto", "Where to train").Choices({"auto", "cpu", "cuda"}),
         OptionSpec::Int("gradient_accumulation", 1, "Micro-batches summed into one step")
             .Range(1, 1 << 20),
         OptionSpec::Float("max_grad_norm", 1.0, "Clip the gradient's L2 norm; 0: no clipping")
             .Range(0, 1e9),
         OptionSpec::Bool("train_on_prompt", false, "Also learn the prompt tokens"),
         OptionSpec::Bool("gradient_checkpointing", false,
                          "Recompute each decoder layer in the backward pass: less memory, "
                          "one more forward pass"),
         OptionSpec::Int("checkpoint_every", 100, "Steps between checkpoints; 0: none")
             .Range(0, 1e12),
         OptionSpec::Int("eval_every", 0, "Steps between eval-loss checks; 0: only at the end")
             .Range(0, 1e12),
         OptionSpec::Int("eval_max_new_tokens", 64, "Tokens generated per eval example")
             .Range(1, 1 << 20),
         OptionSpec::Int("eval_max_examples", 0, "Eval examples used; 0: all").Range(0, 1e12),
         OptionSpec::Int("threads", 0, "CPU threads for tensor operations; 0: one per core")
             .Range(0, 4096)});
    config.train = {.steps = options.Int("steps"),
                    .batch_size = options.Int("batch_size"),
                    .seq_len = options.Int("seq_len"),
                    .seed = options.Int("seed"),
                    .device = options.String("device"),
                    .gradient_accumulation = options.Int("gradient_accumulation"),
                    .max_grad_norm = options.Float("max_grad_norm"),
                    .train_on_prompt = options.Bool("train_on_prompt"),
                    .gradient_checkpointing = options.Bool("gradient_checkpointing"),
                    .checkpoint_every = options.Int("checkpoint_every"),
                    .eval_every = options.Int("eval_every"),
                    .eval_max_new_tokens = options.Int("eval_max_new_tokens"),
                    .eval_max_examples = options.Int("eval_max_examples"),
                    .threads = options.Int("threads")};
  }

  // [[metrics]]: an array of tables, each naming a metric plugin.
  std::map<std::string, MetricTraits>& metric_traits = config.metric_traits;
  metric_traits = {{"eval_loss", {MetricGoal::kMinimize, {.min = 0.0}}},
                   {"perplexity", {MetricGoal::kMinimize, {.min = 1.0}}}};
  if (const toml::node* node = document.get("metrics")) {
    const toml::array* array = node->as_array();
    if (array == nullptr || !array->is_array_of_tables()) {
      throw UserError(Where(node->source(), file) +
                      ": 'metrics' must be an array of tables; write each as [[metrics]] with "
                      "plugin = \"...\"");
    }
    toml::array out_array;
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::table* table = array->get(i)->as_table();
      const std::string prefix = "metrics[" + std::to_string(i) + "]";
      if (table->get("plugin") == nullptr) {
        throw UserError(Where(table->source(), file) + ": missing required key '" + prefix +
                        ".plugin'; name the metric, e.g. plugin = \"exact_match\"");
      }
      toml::table out;
      auto [options, info] =
          plugin_section("metrics", PluginKind::kMetric, "plugin", "", {}, table, prefix, out);
      for (const MetricConfig& earlier : config.metrics) {
        if (earlier.plugin == info->name) {
          throw UserError(Where(table->source(), file) + ": metric '" + info->name +
                          "' is listed twice; keep one [[metrics]] entry per metric");
        }
      }
      config.metrics.push_back({info->name, PluginOptions(options, *info)});
      const auto& metric =
          std::get<MetricPlugin>(plugins.Find(PluginKind::kMetric, info->name)->plugin);
      metric_traits[info->name] = {metric.goal, metric.range};
      out_array.push_back(std::move(out));
    }
    resolved.insert_or_assign("metrics", std::move(out_array));
  }
  {
    const Options options = section(
        "eval", {OptionSpec::Int("few_shot", 0,
                                 "Training examples in the base model's prompt for a prompted "
                                 "baseline; 0: none")
                     .Range(0, 64)});
    config.eval.few_shot = options.Int("few_shot");
    if (config.eval.few_shot > 0 && config.metrics.empty()) {
      const toml::node* node = document.at_path("eval.few_shot").node();
      throw UserError(Where(node ? node->source() : toml::source_region{}, file) +
                      ": eval.few_shot = " + std::to_string(config.eval.few_shot) +
                      " scores the prompted base model's outputs, and no [[metrics]] are "
                      "listed; add one (e.g. [[metrics]] plugin = \"exact_match\") or remove "
                      "eval.few_shot");
    }
  }

  if (const toml::table* sweep_table = SubTable(document, "sweep", "sweep", file)) {
    SweepConfig sweep;
    const Options options = section(
        "sweep",
        {OptionSpec::String("method", "grid", "Search method").Choices({"grid", "random", "tpe"}),
         OptionSpec::Int("max_trials", 0,
                         "Most configurations to run; default: every point of a grid, 8 for "
                         "random and tpe")
             .Range(1, kMaxSweepConfigurations),
         OptionSpec::Int("parallel", 1, "Trials run at once").Range(1, 1024),
         OptionSpec::Int("repeats", 1,
                         "Trials per configuration, with seeds train.seed + 0, 1, ...; "
                         "configurations are ranked by their mean")
             .Range(1, 1000)},
        {"objective", "parameters", "early_stop", "executor"});
    sweep.method = options.String("method");
    sweep.max_trials = options.Int("max_trials");
    sweep.parallel = options.Int("parallel");
    sweep.repeats = options.Int("repeats");
    toml::table& sweep_out = *resolved.get_as<toml::table>("sweep");
    sweep.executor = ResolveExecutor(*sweep_table, sweep.parallel, file, sweep_out);

    {
      const toml::table* table = SubTable(*sweep_table, "objective", "sweep.objective", file);
      if (table == nullptr) {
        throw UserError(Where(sweep_table->source(), file) +
                        ": missing required key 'sweep.objective'; add objective = { metric = "
                        "\"exact_match\", goal = \"maximize\" } to [sweep]");
      }
      toml::table out;
      const Options objective = ResolveSection(
          {table,
           "sweep.objective",
           {OptionSpec::String("metric", {}, "Metric the sweep optimises").Required(),
            OptionSpec::String("goal", "", "maximize or minimize; default: the metric's own")},
           {}},
          file, table->source(), out);
      sweep.objective_metric = objective.String("metric");
      std::vector<std::string> available;
      for (const auto& [name, traits] : metric_traits) available.push_back(name);
      const auto traits = metric_traits.find(sweep.objective_metric);
      if (traits == metric_traits.end()) {
        throw UserError(Where(table->get("metric")->source(), file) +
                        ": 'sweep.objective.metric' = \"" + sweep.objective_metric +
                        "\" is not measured by this run" +
                        DidYouMean(sweep.objective_metric, available) +
                        "; available: " + JoinNames(available) + " (add it under [[metrics]])");
      }
      const std::string& goal_text = objective.String("goal");
      if (goal_text.empty()) {
        sweep.objective_goal = traits->second.goal;
      } else if (goal_text == "maximize" || goal_text == "minimize") {
        sweep.objective_goal =
            goal_text == "maximize" ? MetricGoal::kMaximize : MetricGoal::kMinimize;
      } else {
        const std::vector<std::string> goals = {"maximize", "minimize"};
        throw UserError(Where(table->get("goal")->source(), file) +
                        ": 'sweep.objective.goal' = \"" + goal_text +
                        "\" is not one of maximize, minimize" + DidYouMean(goal_text, goals));
      }
      out.insert_or_assign("goal",
                           sweep.objective_goal == MetricGoal::kMaximize ? "maximize" : "minimize");
      sweep_out.insert_or_assign("objective", std::move(out));
    }

    {
      const toml::table* table = SubTable(*sweep_table, "early_stop", "sweep.early_stop", file);
      toml::table out;
      const Options early_stop = ResolveSection(
          {table,
           "sweep.early_stop",
           {OptionSpec::String("type", table ? "asha" : "none", "Early-stopping rule")
                .Choices({"none", "asha"}),
            OptionSpec::Int("min_steps", 20, "Steps before the first pruning decision")
                .Range(1, 1e12),
            OptionSpec::Int("eta", 3, "Keep the best 1/eta of trials at each rung").Range(2, 100)},
           {}},
          file, table ? table->source() : sweep_table->source(), out);
      sweep.early_stop = early_stop.String("type");
      sweep.early_stop_min_steps = early_stop.Int("min_steps");
      sweep.early_stop_eta = early_stop.Int("eta");
      sweep_out.insert_or_assign("early_stop", std::move(out));
    }

    if (const toml::table* table = SubTable(*sweep_table, "parameters", "sweep.parameters", file)) {
      std::vector<std::string> paths;
      for (const auto& [path, spec] : specs_by_path) paths.push_back(path);
      toml::table out;
      std::map<std::string, std::string> wheres;  // parameter -> where the file sets it
      for (const auto& [key, node] : *table) {
        SweepParameter parameter;
        parameter.path = std::string(key.str());
        const std::string where =
            Where(key.source().begin.line ? key.source() : node.source(), file);
        wheres[parameter.path] = where;
        const auto target = specs_by_path.find(parameter.path);
        if (target == specs_by_path.end()) {
          throw UserError(where + ": sweep parameter '" + parameter.path +
                          "' is not a key of this run" + DidYouMean(parameter.path, paths) +
                          "; parameters name keys such as adapter.rank or optimizer.lr");
        }
        const OptionSpec& spec = target->second;
        const std::string label = "sweep.parameters.\"" + parameter.path + "\"";
        if (const toml::array* values = node.as_array()) {
          if (values->empty()) throw UserError(where + ": '" + label + "' lists no values");
          parameter.kind = SweepParameter::Kind::kValues;
          for (const toml::node& value : *values) {
            parameter.values.push_back(CheckValue(spec, value, parameter.path, file));
          }
        } else if (const toml::value<std::string>* expression = node.as_string()) {
          parameter.kind = SweepParameter::Kind::kExpression;
          parameter.expression = expression->get();
          for (const std::string& name : DottedNames(parameter.expression)) {
            if (specs_by_path.count(name) == 0) {
              throw UserError(where + ": '" + label + "' refers to '" + name +
                              "', which is not a key of this run" + DidYouMean(name, paths));
            }
          }
        } else if (const toml::table* distribution = node.as_table()) {
          parameter.kind = SweepParameter::Kind::kDistribution;
          toml::table scratch;
          const std::vector<std::string> kinds = {"uniform", "log_uniform", "int_uniform",
                                                  "categorical"};
          const Options d = ResolveSection(
              {distribution,
               label,
               {OptionSpec::String("distribution", {},
                                   "uniform, log_uniform, int_uniform or "
                                   "categorical")
                    .Required()
                    .Choices(kinds),
                OptionSpec::Float("min", NAN, "Lower bound"),
                OptionSpec::Float("max", NAN, "Upper bound"),
                OptionSpec::Float("q", 0.0, "Round samples to a multiple of q; 0: no rounding")
                    .Range(0, INFINITY)},
               {"values"}},
              file, distribution->source(), scratch);
          parameter.distribution = d.String("distribution");
          parameter.min = d.Float("min");
          parameter.max = d.Float("max");
          if (d.Float("q") > 0) parameter.q = d.Float("q");
          if (parameter.distribution == "categorical") {
            const toml::node* values = distribution->get("values");
            if (values == nullptr || !values->is_array() || values->as_array()->empty()) {
              throw UserError(
                  where + ": '" + label +
                  "' is categorical and needs values = [ ... ] with at least one value");
            }
            for (const toml::node& value : *values->as_array()) {
              parameter.values.push_back(CheckValue(spec, value, parameter.path, file));
            }
          } else {
            if (distribution->get("values") != nullptr) {
              throw UserError(where + ": '" + label +
                              "' has values, which only a categorical "
                              "distribution takes; use min and max");
            }
            if (std::isnan(parameter.min) || std::isnan(parameter.max) ||
                !(parameter.min < parameter.max)) {
              throw UserError(where + ": '" + label + "' needs min < max, both set");
            }
            if (parameter.distribution == "log_uniform" && parameter.min <= 0) {
              throw UserError(where + ": '" + label + "' is log_uniform, so min must be > 0");
            }
            const bool integer_target = spec.type == OptionType::kInt;
            const bool float_target = spec.type == OptionType::kFloat;
            if (!float_target && !integer_target) {
              throw UserError(where + ": '" + label + "' samples numbers, but '" + parameter.path +
                              "' is " + ArticleFor(spec.type) +
                              std::string(OptionTypeName(spec.type)) +
                              "; give a list of values instead");
            }
            if (parameter.distribution == "int_uniform" && !integer_target) {
              throw UserError(where + ": '" + label + "' is int_uniform, but '" + parameter.path +
                              "' is a float; use uniform or log_uniform");
            }
            auto in_range = [&](double v) {
              return (spec.min_exclusive ? v > spec.min : v >= spec.min) &&
                     (spec.max_exclusive ? v < spec.max : v <= spec.max);
            };
            if (!in_range(parameter.min) || !in_range(parameter.max)) {
              throw UserError(where + ": '" + label + "' spans [" + NumberText(parameter.min) +
                              ", " + NumberText(parameter.max) + "], outside the range of '" +
                              parameter.path + "', " + RangeText(spec));
            }
          }
        } else {
          throw UserError(where + ": '" + label +
                          "' must be a list of values, an expression "
                          "string, or a table with distribution = ...; got " +
                          TypeOf(node));
        }
        out.insert_or_assign(parameter.path, node);
        sweep.parameters.push_back(std::move(parameter));
      }
      sweep_out.insert_or_assign("parameters", std::move(out));
      if (sweep.repeats > 1 && wheres.contains("train.seed")) {
        throw UserError(wheres.at("train.seed") + ": 'train.seed' is swept and sweep.repeats = " +
                        std::to_string(sweep.repeats) +
                        " gives each configuration seeds too; keep one (repeats seeds from "
                        "train.seed up)");
      }
      // What `tune sweep` would stop on, refused here, before anything is created.
      for (const SweepParameter& parameter : sweep.parameters) {
        if (parameter.kind != SweepParameter::Kind::kExpression) continue;
        try {
          CheckTiedParameter(sweep, parameter, specs_by_path.at(parameter.path));
        } catch (const UserError& e) {
          throw UserError(wheres.at(parameter.path) + ": " + e.what());
        }
      }
      if (sweep.method == "grid") {
        int64_t size = 0;
        try {
          size = GridSize(sweep);
        } catch (const UserError& e) {
          throw UserError(Where(sweep_table->source(), file) + ": " + e.what());
        }
        if (sweep.max_trials == 0 && size > kMaxSweepConfigurations) {
          throw UserError(Where(table->source(), file) + ": the grid of sweep.parameters has " +
                          GridSizeText(sweep) + ", more than the " +
                          Grouped(kMaxSweepConfigurations) +
                          " configurations a sweep runs; list fewer values, use sweep.method = "
                          "\"random\" or \"tpe\", or set sweep.max_trials to run the first ones");
        }
      }
    }
    // What runs, written down: the resolved config says how many configurations, whatever the
    // default was.
    if (sweep.max_trials == 0) {
      sweep_out.insert_or_assign("max_trials", SweepConfigurations(sweep));
    }
    config.sweep = std::move(sweep);
  }

  {
    const Options options = section(
        "registry",
        {OptionSpec::String("path", DefaultRegistryPath(),
                            "Where adapters are stored: a folder, or the URL of a `tune serve` "
                            "registry server (default: $TUNE_REGISTRY, else .tune/registry)"),
         OptionSpec::String("token_file", "",
                            "A file whose first line is the server's token (default: "
                            "$TUNE_TOKEN)"),
         OptionSpec::String("ca_file", "",
                            "PEM file of the CA that signed the server's certificate (default: "
                            "$TUNE_CA_FILE, else the system's)"),
         OptionSpec::Int("retry_seconds", 600,
                         "How long a finished run waits for a server it cannot reach before "
                         "leaving its registration to `tune registry push`")
             .Range(0, 7 * 24 * 3600)});
    const toml::table* table = SubTable(document, "registry", "registry", file);
    // Written in the file: relative to the file. Typed or defaulted: to where tune runs. A URL
    // is no path.
    const std::string path = options.String("path");
    config.registry.location = table && table->get("path") && !Registry::IsUrl(path)
                                   ? impl_->ResolvePath("registry.path", path).string()
                                   : path;
    for (const auto& [key, field] : {std::pair{"token_file", &config.registry.token_file},
                                     std::pair{"ca_file", &config.registry.ca_file}}) {
      const std::string value = options.String(key);
      if (value.empty()) continue;
      *field = table && table->get(key) ? impl_->ResolvePath(std::string("registry.") + key, value)
                                        : std::filesystem::path(value);
    }
    config.registry.retry_seconds = options.Int("retry_seconds");
  }
  config.plugin_paths = PluginPaths();
  {
    toml::array paths;
    const toml::table* table = SubTable(document, "plugins", "plugins", file);
    if (table && table->get("paths")) paths = *table->get("paths")->as_array();
    toml::table out;
    out.insert_or_assign("paths", std::move(paths));
    resolved.insert_or_assign("plugins", std::move(out));
  }

  config.resolved_toml = TomlText(resolved);
  return config;
}

std::string DefaultRegistryPath() {
  const char* env = std::getenv("TUNE_REGISTRY");
  return env != nullptr && *env != '\0' ? env : ".tune/registry";
}

bool SameResolvedConfig(const std::string& a, const std::string& b) {
  if (a == b) return true;
  try {
    return toml::parse(a) == toml::parse(b);
  } catch (const toml::parse_error&) {
    return false;
  }
}

std::string RangeText(const OptionSpec& spec) {
  return std::string(spec.min_exclusive ? "(" : "[") + NumberText(spec.min) + ", " +
         NumberText(spec.max) + (spec.max_exclusive ? ")" : "]");
}

bool IsPathKey(std::string_view dotted) {
  return dotted == "model.path" || dotted == "dataset.path" || dotted == "dataset.eval_path" ||
         dotted == "registry.path" || dotted == "registry.token_file" ||
         dotted == "registry.ca_file" || dotted == "plugins.paths";
}

std::string OverrideText(const std::string& key, const OptionValue& value) {
  std::string text = key + "=";
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) {
          text += v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, int64_t>) {
          text += std::to_string(v);
        } else if constexpr (std::is_same_v<T, double>) {
          text += nlohmann::json(v).dump();  // shortest text that reads back as the same double
          if (text.find_first_of(".eE", key.size() + 1) == std::string::npos) text += ".0";
        } else if constexpr (std::is_same_v<T, std::string>) {
          text += nlohmann::json(v).dump();
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          text += nlohmann::json(v).dump();
        }
      },
      value);
  return text;
}

}  // namespace tune
