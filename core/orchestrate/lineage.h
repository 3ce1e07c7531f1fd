// Lineage: the registry record of a trained adapter, from the run that made it. It lives with the
// orchestration that registers runs, above the trainer, so that the trainer needs nothing of it.
#pragma once

#include <string>

#include "config/run_config.h"
#include "orchestrate/tracker.h"
#include "registry/registry.h"
#include "train/trainer.h"

namespace tune {

class PluginHost;

// What a finished run registers: its adapter folder and eval outputs, its training file as a
// dataset version (named dataset.name or, when that is empty, DatasetName(dataset.path); none for a
// run folder from before runs kept their rows), and its record with everything DESIGN section 5
// lists that the run knows: method and hyper-parameters ("adapter.rank", "optimizer.lr",
// "train.steps", ...), the resolved config, dataset hash and counts, base model identity and
// content hash, tokenizer hash, seed, scores and base scores, the training curve, timings, peak
// memory, plugin names and versions, tune's version. `base_model_sha256` is ModelDirectorySha256
// of config.model.path, which the caller computes once per model: a sweep registers many trials of
// one base, and hashing gigabytes for each would dominate. The record's sweep, trial and
// configuration are the caller's to set.
TrackedVersion TrainedVersion(const RunConfig& config, const PluginHost& host,
                              const TrainSummary& summary, const std::string& run_id,
                              const std::string& base_model_sha256);

// A config value as a version's (or a run's) parameter: a list as its items joined by ',', an
// unset value as "".
ParamValue ToParam(const OptionValue& value);

// SHA-256 over the model directory's config.json, generation_config.json, tokenizer files
// (tokenizer.json, tokenizer.model, tokenizer_config.json, chat_template.*) and weight files, each
// preceded by its name, in name order: the base model's identity whatever its path. The version
// record's tokenizer_hash is the same over the tokenizer files alone.
std::string ModelDirectorySha256(const std::filesystem::path& dir);

// A registry name for a dataset file: its folder's name and its own without the extension,
// "clean-task" for .../clean/task.jsonl, lower case, other characters as '-'; "dataset" when
// nothing valid remains.
std::string DatasetName(const std::filesystem::path& file);

}  // namespace tune
