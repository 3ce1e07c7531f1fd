#include "orchestrate/slurm.h"

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "orchestrate/program.h"
#include "util/echo.h"
#include "util/error.h"
#include "util/suggest.h"

namespace tune {
namespace {

namespace fs = std::filesystem;

// A slow controller answers in seconds; one that takes a minute is as good as down.
constexpr std::chrono::seconds kToolTimeout{60};

std::vector<std::string> Split(std::string_view line, char separator) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (true) {
    const size_t end = line.find(separator, start);
    fields.emplace_back(line.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return fields;
    start = end + 1;
  }
}

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (!line.empty()) lines.push_back(line);
    start = end + 1;
  }
  return lines;
}

int Number(const std::string& text) {
  return static_cast<int>(std::strtol(text.c_str(), nullptr, 10));
}

// "CANCELLED by 0" is CANCELLED; "CANCELLED+" (sacct's mark for more) too.
std::string StateWord(const std::string& state) {
  std::string word = state.substr(0, state.find(' '));
  while (!word.empty() && word.back() == '+') word.pop_back();
  return word;
}

// "None assigned" and "(null)" are not nodes.
std::string NodeName(const std::string& node) {
  if (node.empty() || node.starts_with("None") || node == "(null)" || node == "n/a") return "";
  return node;
}

// sacct's "0:15": exit status, then the signal that ended it.
void ReadExitCode(const std::string& text, SlurmTask& task) {
  const size_t colon = text.find(':');
  task.exit_code = Number(text.substr(0, colon));
  task.signal = colon == std::string::npos ? 0 : Number(text.substr(colon + 1));
}

std::string Quote(const std::string& text) {
  std::string quoted = "'";
  for (const char c : text) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

std::string Join(const std::vector<std::string>& words, const std::string& separator) {
  std::string joined;
  for (const std::string& word : words) joined += (joined.empty() ? "" : separator) + word;
  return joined;
}

// What a tool said on stderr, as one line: its "sbatch: error: " prefixes dropped.
std::string Complaint(const ProgramResult& result) {
  std::vector<std::string> lines;
  for (std::string_view line : Lines(result.err.empty() ? result.out : result.err)) {
    for (const std::string_view prefix : {"sbatch: error: ", "sbatch: ", "error: "}) {
      if (line.starts_with(prefix)) line.remove_prefix(prefix.size());
    }
    lines.emplace_back(line);
  }
  if (result.timed_out)
    lines.push_back("no answer within " + std::to_string(kToolTimeout.count()) + " s");
  return Echo(Join(lines, "; "), 300);
}

class SlurmTools : public SlurmCommands {
 public:
  std::string Submit(const fs::path& script) override {
    const ProgramResult result =
        RunProgram({"sbatch", "--parsable", script.string()}, kToolTimeout);
    if (!result.started) {
      throw UserError("there is no sbatch on PATH to submit " + script.string() +
                      "; run tune sweep where Slurm's commands are");
    }
    // "1234", or "1234;cluster" on a federation.
    const std::string id =
        Lines(result.out).empty()
            ? ""
            : std::string(Lines(result.out).front().substr(0, Lines(result.out).front().find(';')));
    if (result.exit_code != 0 || id.empty() ||
        !std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      throw UserError("Slurm refused " + script.string() + ": " + Complaint(result));
    }
    return id;
  }

  std::vector<SlurmTask> Query(const std::vector<std::string>& arrays,
                               const std::vector<std::string>& raw_ids) override {
    std::vector<SlurmTask> tasks;
    if (!arrays.empty() && accounting_) {
      const ProgramResult result = RunProgram({"sacct", "-X", "-n", "-P", "-j", Join(arrays, ","),
                                               "-o", "JobID,JobIDRaw,State,ExitCode,NodeList"},
                                              kToolTimeout);
      if (result.exit_code == 0) return ParseSacct(result.out);
      // "Slurm accounting storage is disabled": squeue and the completion log from now on. Any
      // other failure (a busy controller) is this call's alone.
      if (result.err.find("disabled") != std::string::npos) accounting_ = false;
    }
    if (!arrays.empty()) {
      const ProgramResult result =
          RunProgram({"squeue", "-h", "-r", "-t", "all", "-j", Join(arrays, ","), "-O",
                      "JobID:|,ArrayJobID:|,ArrayTaskID:|,State:|,NodeList:|,exit_code:|"},
                     kToolTimeout);
      if (result.exit_code == 0) tasks = ParseSqueue(result.out);
    }
    std::vector<std::string> forgotten;
    for (const std::string& raw : raw_ids) {
      const bool known = std::any_of(tasks.begin(), tasks.end(),
                                     [&](const SlurmTask& task) { return task.raw_id == raw; });
      if (!known) forgotten.push_back(raw);
    }
    if (!forgotten.empty() && completions_) {
      const ProgramResult result =
          RunProgram({"sacct", "--completion", "-n", "-P", "-j", Join(forgotten, ","), "-o",
                      "JobID,State,ExitCode,NodeList"},
                     kToolTimeout);
      if (result.exit_code == 0) {
        for (const SlurmTask& task : ParseJobCompletions(result.out)) tasks.push_back(task);
      } else {
        completions_ = false;  // no completion log (JobCompType=jobcomp/none)
      }
    }
    return tasks;
  }

  bool Requeue(const std::string& task) override {
    return RunProgram({"scontrol", "requeue", task}, kToolTimeout).exit_code == 0;
  }

  void Release(const std::string& task) override {
    RunProgram({"scontrol", "update", "JobId=" + task, "StartTime=now"}, kToolTimeout);
  }

  void Cancel(const std::string& task) override { RunProgram({"scancel", task}, kToolTimeout); }

 private:
  bool accounting_ = true;
  bool completions_ = true;
};

// Which executor key a refusal of sbatch --test-only is about, by the words Slurm uses.
std::string KeyOfComplaint(const std::string& complaint) {
  std::string lower = complaint;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower.find("partition") != std::string::npos) return "partition";
  if (lower.find("gres") != std::string::npos ||
      lower.find("generic resource") != std::string::npos) {
    return "gres";
  }
  if (lower.find("time limit") != std::string::npos) return "time";
  if (lower.find("memory") != std::string::npos) return "mem";
  return "";
}

// "1234_[6-9,12%2]", tasks not yet started, one by one: 1234_6 ... 1234_9, 1234_12.
std::vector<std::string> ExpandPendingTasks(const std::string& id) {
  const size_t open = id.find('['), close = id.find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return {};
  std::string inside = id.substr(open + 1, close - open - 1);
  inside = inside.substr(0, inside.find('%'));
  std::vector<std::string> tasks;
  for (const std::string& part : Split(inside, ',')) {
    const size_t dash = part.find('-');
    const long first = std::strtol(part.c_str(), nullptr, 10);
    const long last =
        dash == std::string::npos ? first : std::strtol(part.c_str() + dash + 1, nullptr, 10);
    for (long t = first; t <= last && tasks.size() < 100000; ++t) {
      tasks.push_back(id.substr(0, open) + std::to_string(t));
    }
  }
  return tasks;
}

}  // namespace

std::vector<SlurmTask> ParseSacct(std::string_view text) {
  std::vector<SlurmTask> tasks;
  for (const std::string_view line : Lines(text)) {
    const std::vector<std::string> f = Split(line, '|');
    if (f.size() < 5) continue;
    if (f[0].find('[') != std::string::npos) {
      for (const std::string& id : ExpandPendingTasks(f[0]))
        tasks.push_back({id, "", "PENDING", "", 0, 0});
      continue;
    }
    SlurmTask task;
    task.id = f[0];
    task.raw_id = f[1];
    task.state = StateWord(f[2]);
    ReadExitCode(f[3], task);
    task.node = NodeName(f[4]);
    tasks.push_back(task);
  }
  return tasks;
}

std::vector<SlurmTask> ParseSqueue(std::string_view text) {
  std::vector<SlurmTask> tasks;
  for (const std::string_view line : Lines(text)) {
    const std::vector<std::string> f = Split(line, '|');
    if (f.size() < 6) continue;
    SlurmTask task;
    const bool in_array = !f[2].empty() && std::all_of(f[2].begin(), f[2].end(),
                                                       [](char c) { return c >= '0' && c <= '9'; });
    task.id = in_array ? f[1] + "_" + f[2] : f[0];
    task.state = StateWord(f[3]);
    // A pending task's number is its array's until it starts.
    if (task.state != "PENDING") task.raw_id = f[0];
    task.node = NodeName(f[4]);
    const int status = Number(f[5]);  // a wait status
    task.exit_code = (status >> 8) & 0xff;
    task.signal = status & 0x7f;
    tasks.push_back(task);
  }
  return tasks;
}

std::vector<SlurmTask> ParseJobCompletions(std::string_view text) {
  std::vector<SlurmTask> tasks;
  for (const std::string_view line : Lines(text)) {
    const std::vector<std::string> f = Split(line, '|');
    if (f.size() < 4) continue;
    SlurmTask task;
    task.raw_id = f[0];
    task.state = StateWord(f[1]);
    ReadExitCode(f[2], task);
    task.node = NodeName(f[3]);
    tasks.push_back(task);
  }
  return tasks;
}

bool SlurmTaskEnded(const SlurmTask& task) {
  static const char* kEnded[] = {"COMPLETED", "FAILED",        "CANCELLED", "TIMEOUT", "NODE_FAIL",
                                 "PREEMPTED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"};
  return std::any_of(std::begin(kEnded), std::end(kEnded),
                     [&](const char* state) { return task.state == state; });
}

bool SlurmTaskRequeued(const SlurmTask& task) {
  return task.state == "REQUEUED" || task.state == "REQUEUE_HOLD" || task.state == "REQUEUE_FED";
}

AttemptEnd SlurmAttemptEnd(const SlurmTask& task) {
  const std::string& s = task.state;
  if (s == "COMPLETED") return task.exit_code == 0 ? AttemptEnd::kFinished : AttemptEnd::kFailed;
  if (s == "FAILED") {
    if (task.signal != 0) return AttemptEnd::kKilled;
    if (task.exit_code == 130 || task.exit_code == 143) return AttemptEnd::kInterrupted;
    return AttemptEnd::kFailed;
  }
  if (s == "CANCELLED") return AttemptEnd::kCancelled;
  if (s == "PREEMPTED") return AttemptEnd::kPreempted;
  if (s == "TIMEOUT" || s == "DEADLINE") return AttemptEnd::kTimeLimit;
  if (s == "NODE_FAIL" || s == "BOOT_FAIL") return AttemptEnd::kNodeFailure;
  if (s == "OUT_OF_MEMORY") return AttemptEnd::kOutOfMemory;
  if (SlurmTaskRequeued(task) || s == "PENDING") return AttemptEnd::kRequeued;
  return AttemptEnd::kLost;
}

std::vector<std::string> SbatchOptions(const ExecutorConfig& executor) {
  std::vector<std::string> options = {"--requeue", "--open-mode=append"};
  if (executor.signal_seconds > 0) {
    options.push_back("--signal=B:TERM@" + std::to_string(executor.signal_seconds));
  }
  if (!executor.partition.empty()) options.push_back("--partition=" + executor.partition);
  if (!executor.gres.empty()) options.push_back("--gres=" + executor.gres);
  if (!executor.time.empty()) options.push_back("--time=" + executor.time);
  options.push_back("--cpus-per-task=" + std::to_string(executor.cpus_per_task));
  if (!executor.mem.empty()) options.push_back("--mem=" + executor.mem);
  options.insert(options.end(), executor.sbatch_args.begin(), executor.sbatch_args.end());
  return options;
}

std::string ArrayIndices(std::vector<int64_t> trials) {
  std::sort(trials.begin(), trials.end());
  std::string text;
  for (size_t i = 0; i < trials.size();) {
    size_t j = i;
    while (j + 1 < trials.size() && trials[j + 1] == trials[j] + 1) ++j;
    if (!text.empty()) text += ',';
    text += std::to_string(trials[i]);
    if (j > i) {
      text += '-';
      text += std::to_string(trials[j]);
    }
    i = j + 1;
  }
  return text;
}

std::string RenderArrayScript(const ArrayScript& script) {
  std::vector<int64_t> trials;
  for (const ArrayScript::Task& task : script.tasks) trials.push_back(task.trial);
  std::ostringstream out;
  out << "#!/bin/bash\n"
      << "# Trials " << ArrayIndices(trials) << " of tune sweep " << script.sweep
      << ", written by tune sweep: array task N runs trial N.\n"
      << "# Submit it again with `sbatch THIS_FILE`; run one trial here with\n"
      << "# `SLURM_ARRAY_TASK_ID=N bash THIS_FILE`. A trial that cannot reach the sweep's driver\n"
      << "# trains alone and registers its version itself.\n";
  for (const std::string& option : script.options) out << "#SBATCH " << option << "\n";
  out << "set -u\n"
      << "# A trial run before (retried, requeued, preempted) continues from its checkpoint.\n"
      << "continue_run() {\n"
      << "  if [ -n \"$(ls -A \"$1/checkpoints\" 2>/dev/null)\" ]; then echo --resume; "
         "else echo --restart; fi\n"
      << "}\n"
      << "case \"${SLURM_ARRAY_TASK_ID:-}\" in\n";
  for (const ArrayScript::Task& task : script.tasks) {
    out << "  " << task.trial << ")\n    exec " << Quote(script.tune);
    for (const std::string& arg : task.train_args) out << " " << Quote(arg);
    out << " \\\n      \"$(continue_run " << Quote(task.run_dir.string()) << ")\"";
    for (const std::string& arg : task.driver_args) out << " " << Quote(arg);
    out << " ;;\n";
  }
  out << "  *)\n    echo \"error: task ${SLURM_ARRAY_TASK_ID:-(none)} is not a trial of this "
         "script; set SLURM_ARRAY_TASK_ID to one of "
      << ArrayIndices(trials) << "\" >&2\n    exit 2 ;;\nesac\n";
  return out.str();
}

std::unique_ptr<SlurmCommands> MakeSlurmCommands() { return std::make_unique<SlurmTools>(); }

std::optional<int64_t> ParseMaxArraySize(std::string_view show_config) {
  for (const std::string_view line : Lines(show_config)) {
    if (!line.starts_with("MaxArraySize")) continue;
    const size_t equals = line.find('=');
    if (equals == std::string_view::npos) return std::nullopt;
    const std::string value(line.substr(equals + 1));
    char* end = nullptr;
    const long long size = std::strtoll(value.c_str(), &end, 10);
    if (end == value.c_str()) return std::nullopt;
    return size;
  }
  return std::nullopt;
}

void CheckSlurmExecutor(const ExecutorConfig& executor, int64_t trials) {
  const auto where = [&](const std::string& key) {
    const auto it = executor.wheres.find(key);
    if (it != executor.wheres.end()) return it->second;
    const auto table = executor.wheres.find("");
    return table != executor.wheres.end() ? table->second : std::string("[sweep.executor]");
  };
  if (FindOnPath("sbatch").empty()) {
    throw UserError(where("kind") +
                    ": sweep.executor.kind = \"slurm\", but there is no sbatch on PATH; run tune "
                    "sweep on a Slurm login node, or add Slurm's bin folder to PATH");
  }
  if (!executor.partition.empty()) {
    const ProgramResult result = RunProgram({"sinfo", "-h", "-o", "%R"}, kToolTimeout);
    std::vector<std::string> partitions;
    for (const std::string_view line : Lines(result.out)) partitions.emplace_back(line);
    if (result.exit_code == 0 &&
        std::find(partitions.begin(), partitions.end(), executor.partition) == partitions.end()) {
      throw UserError(where("partition") + ": sweep.executor.partition = \"" +
                      Echo(executor.partition, 40) + "\" is not a partition of this cluster" +
                      DidYouMean(executor.partition, partitions) +
                      "; sinfo lists: " + Join(partitions, ", "));
    }
  }
  const std::optional<int64_t> max_array_size =
      ParseMaxArraySize(RunProgram({"scontrol", "show", "config"}, kToolTimeout).out);
  if (max_array_size && trials >= *max_array_size) {
    throw UserError(where("kind") + ": the sweep runs " + std::to_string(trials) +
                    " trials and Slurm array task N runs trial N, but this cluster numbers array "
                    "tasks below " +
                    std::to_string(*max_array_size) +
                    " (MaxArraySize); run fewer (sweep.max_trials) or split the sweep");
  }
  std::vector<std::string> argv = {"sbatch", "--test-only"};
  for (const std::string& option : SbatchOptions(executor)) argv.push_back(option);
  const ProgramResult result = RunProgram(argv, kToolTimeout, "#!/bin/sh\ntrue\n");
  if (result.exit_code != 0) {
    const std::string complaint = Complaint(result);
    const std::string key = KeyOfComplaint(complaint);
    throw UserError(where(key) + ": Slurm refuses the sweep's trials: " + complaint + " (check " +
                    (key.empty() ? std::string("[sweep.executor]") : "sweep.executor." + key) +
                    ")");
  }
}

}  // namespace tune
