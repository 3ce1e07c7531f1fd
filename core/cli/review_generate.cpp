#include "cli/review_generate.h"

#include <algorithm>
#include <fstream>
#include <optional>

#include <nlohmann/json.hpp>

#include "chat_template/chat_template.h"
#include "generate/generate.h"
#include "generate/generation_config.h"
#include "generate/peft_adapter.h"
#include "plugin_host/plugin_host.h"
#include "registry/registry.h"
#include "runtime/interrupt.h"
#include "tune/adapter.h"
#include "tune/model.h"
#include "util/counted.h"
#include "util/error.h"
#include "util/log.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Ref(const VersionRecord& record) {
  return record.name + ":" + std::to_string(record.version);
}

// The outputs already in `file`, in prompt order: every whole line that is the next prompt's. A
// line cut short by a stop, and anything after it, is generated again.
std::vector<std::string> OutputsSoFar(const fs::path& file) {
  std::vector<std::string> outputs;
  std::ifstream in(file, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t at = 0;
  for (size_t end; (end = text.find('\n', at)) != std::string::npos; at = end + 1) {
    const json row = json::parse(text.substr(at, end - at), nullptr, /*allow_exceptions=*/false);
    if (!row.is_object() ||
        row.value("prompt", int64_t{-1}) != static_cast<int64_t>(outputs.size()) ||
        !row.contains("output") || !row["output"].is_string()) {
      break;
    }
    outputs.push_back(row["output"].get<std::string>());
  }
  return outputs;
}

std::string ModelPluginOf(const VersionRecord& record) {
  for (const PluginRef& plugin : record.plugins) {
    if (plugin.kind == "model") return plugin.name;
  }
  return "llama";
}

struct Contestant {
  std::string name;                      // base or NAME:N
  std::optional<VersionRecord> version;  // nullopt: the base model
};

}  // namespace

std::vector<std::string> GenerateReviewOutputs(Registry& registry, const ReviewGeneration& g) {
  const ReviewRecord review = registry.GetReview(g.review);
  if (review.closed_ms != 0) {
    throw UserError("review '" + review.name + "' was closed by " + review.closed_by +
                    "; it takes no more outputs: create another review to compare these versions");
  }
  if (g.versions.empty()) {
    throw UserError("name the versions to compare: tune review generate " + review.name +
                    " NAME:N ...");
  }
  const DatasetRecord set = registry.GetDataset(review.set);
  if (!set.content) {
    throw UserError("review '" + review.name + "' names " + review.set +
                    ", which holds no prompts; create the review with `tune review create`");
  }
  const std::vector<ReviewPrompt> prompts =
      ParseReviewSet(registry.ReadObject(*set.content, review.set + " prompts"), review.set);

  std::vector<VersionRecord> versions;
  for (const std::string& ref : g.versions) versions.push_back(registry.Resolve(ref));
  const VersionRecord& first = versions.front();
  for (const VersionRecord& version : versions) {
    if (version.base_model_hash != first.base_model_hash ||
        (!review.base_model_hash.empty() && version.base_model_hash != review.base_model_hash)) {
      throw UserError(Ref(version) + " was trained from base model " + version.base_model_name +
                      " (" + version.base_model_hash.substr(0, 12) + "), not the one " +
                      (version.base_model_hash != first.base_model_hash
                           ? Ref(first) + " was (" + first.base_model_hash.substr(0, 12) + ")"
                           : "review '" + review.name + "' compares (" +
                                 review.base_model_hash.substr(0, 12) + ")") +
                      "; compare versions of one base model per review");
    }
  }
  const fs::path base_dir = first.base_model_path;
  std::error_code ec;
  if (!fs::exists(base_dir / "config.json", ec)) {
    throw UserError(Ref(first) + " was trained from base model " + first.base_model_name + " at " +
                    first.base_model_path +
                    ", which is not on this machine (no config.json there); run tune review "
                    "generate where that folder is");
  }

  std::vector<Contestant> contestants;
  const auto recorded = [&](const std::string& name) {
    for (const ReviewOutputs& outputs : review.outputs) {
      if (outputs.contestant == name) return true;
    }
    for (const Contestant& c : contestants) {
      if (c.name == name) return true;
    }
    return false;
  };
  if (!recorded(std::string(kBaseContestant))) {
    contestants.push_back({std::string(kBaseContestant), std::nullopt});
  }
  for (const VersionRecord& version : versions) {
    if (!recorded(Ref(version))) contestants.push_back({Ref(version), version});
  }
  if (contestants.empty()) {
    LogInfo("review " + review.name + " has the outputs of every one of these already");
    return {};
  }

  PluginHost host;
  host.Load(PluginSearchPathOfThisProcess({}));
  for (const PluginLoadFailure& failure : host.failures()) LogWarning(failure.message);
  const std::string plugin = ModelPluginOf(first);
  const InterruptScope interrupts;
  std::vector<std::string> done;
  for (const Contestant& contestant : contestants) {
    const fs::path folder = g.work_dir / review.name;
    std::string file_name = contestant.name;
    std::replace(file_name.begin(), file_name.end(), ':', '-');
    const fs::path out = folder / (file_name + ".jsonl");
    fs::create_directories(folder);
    std::vector<std::string> outputs = OutputsSoFar(out);
    fs::path model_dir = base_dir;
    std::optional<ChatTemplate> chat_template = ChatTemplate::Load(base_dir);
    if (outputs.size() < prompts.size()) {
      if (!outputs.empty()) {
        LogInfo(contestant.name + ": going on from prompt " + std::to_string(outputs.size() + 1) +
                " of " + std::to_string(prompts.size()) + " (" + out.string() + ")");
      }
      // A version is fetched (every byte checked) next to its outputs: a PEFT adapter goes on the
      // base model, a whole model (full fine-tuning) is the model.
      const fs::path fetched = folder / (file_name + ".artifact");
      std::unique_ptr<Model> model;
      std::unique_ptr<Adapter> adapter;
      if (contestant.version) {
        fs::remove_all(fetched, ec);
        registry.Fetch(contestant.name, fetched);
        if (!fs::exists(fetched / "adapter_config.json", ec)) model_dir = fetched;
      }
      const LoadedPlugin& loaded = host.Require(PluginKind::kModel, plugin);
      model = host.LoadModel(plugin, model_dir, PluginHost::DefaultOptions(loaded));
      if (contestant.version && model_dir == base_dir) {
        adapter = AttachPeftAdapter(host, *model, base_dir, fetched);
      }
      if (model_dir != base_dir) chat_template = ChatTemplate::Load(model_dir);
      SamplingOptions sampling;
      sampling.max_new_tokens = g.max_new_tokens;
      sampling.temperature = 0.0;
      sampling.seed = 0;
      sampling.end_ids = EndIds(ReadGenerationConfig(model_dir), model->tokenizer());
      // The whole lines kept, then one line per prompt, each on the disk before the next.
      {
        std::ofstream rewrite(out, std::ios::binary | std::ios::trunc);
        for (size_t i = 0; i < outputs.size(); ++i) {
          rewrite << json{{"prompt", i}, {"output", outputs[i]}}.dump(
                         -1, ' ', false, json::error_handler_t::replace)
                  << "\n";
        }
      }
      std::ofstream append(out, std::ios::binary | std::ios::app);
      for (size_t i = outputs.size(); i < prompts.size(); ++i) {
        if (const int signal = InterruptRequested()) {
          throw Interrupted(signal, "stopped generating the outputs of " + contestant.name +
                                        " after " + std::to_string(i) + " of " +
                                        Counted(static_cast<int64_t>(prompts.size()), "prompt") +
                                        "; run the same command again to go on from there");
        }
        const std::string text = chat_template
                                     ? chat_template->Render({{"user", prompts[i].prompt}}, true)
                                     : prompts[i].prompt;
        const TextGeneration generation = GenerateText(*model, text, sampling);
        outputs.push_back(generation.text);
        append << json{{"prompt", i}, {"output", generation.text}}.dump(
                      -1, ' ', false, json::error_handler_t::replace)
               << "\n"
               << std::flush;
        if (!append) throw UserError("cannot write " + out.string() + "; is the disk full?");
        LogInfo(contestant.name + ": " + std::to_string(i + 1) + " of " +
                std::to_string(prompts.size()) + " prompts");
      }
      fs::remove_all(fetched, ec);
    }
    const std::string how =
        "greedy, seed 0, at most " + std::to_string(g.max_new_tokens) + " new tokens, " +
        (chat_template ? "the chat template of " + chat_template->where()
                       : std::string("no chat template (each prompt as written)"));
    registry.AddReviewOutputs(review.name, contestant.name, out, how);
    LogInfo("recorded the outputs of " + contestant.name + " in review " + review.name);
    done.push_back(contestant.name);
  }
  return done;
}

}  // namespace tune
