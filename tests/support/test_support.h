// Helpers shared by the test suites: temporary folders and running the real `tune` binary.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace tune::testing {

// What `call` throws as a UserError (its message), or "(no error)" when it returns.
std::string ErrorOf(const std::function<void()>& call);

// A fresh directory under the system temp folder, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Writes `content` to path()/name (creating parent folders) and returns the full path.
  std::filesystem::path Write(const std::string& name, const std::string& content) const;

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `argv` (argv[0] is a path) with the given extra environment variables, waits for it, and
// captures both output streams. An empty value unsets the variable.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::map<std::string, std::string>& env = {});

// Runs the built `tune` binary with `args`.
CommandResult RunTune(const std::vector<std::string>& args,
                      const std::map<std::string, std::string>& env = {});

// The same, in the folder `dir` (where .tune/ and relative paths are then).
CommandResult RunTuneIn(const std::filesystem::path& dir, const std::vector<std::string>& args,
                        const std::map<std::string, std::string>& env = {});

// A process running beside the test, its stdout on a pipe the test reads line by line; SIGKILLed
// if it still runs when destroyed.
class ChildProcess {
 public:
  // argv[0] is a path. `env` as RunCommand's.
  explicit ChildProcess(std::vector<std::string> argv,
                        const std::map<std::string, std::string>& env = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Complete lines written so far, waiting at most `timeout_ms` for more, or until `enough`.
  std::vector<std::string> ReadLines(int timeout_ms, size_t enough = SIZE_MAX);
  void Kill();  // SIGKILL, then reaps it
  // Reaps it; its exit status, or 128 + the signal that ended it.
  int Wait();
  bool Exited();  // whether it has exited (then Wait returns at once)

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  int out_ = -1;
  std::string pending_;
};

// Runs the built `tune` with `args` in the background and sends it `signal` ("KILL", "TERM") as
// soon as the bash condition `ready` holds (e.g. `[ -d run/checkpoints/step-000000010 ]`), then
// waits for it. exit_code is the run's status as bash reports it (128 + the signal when the signal
// ended it), or -1 when the run ended before `ready` held; err is the run's stderr.
CommandResult SignalTuneWhen(const std::vector<std::string>& args, const std::string& ready,
                             const std::string& signal);

// The Python with torch, numpy and sentencepiece that the build found (scripts/find-python); the
// first `python3` on PATH may have none of them.
inline constexpr const char* kPython = TUNE_PYTHON;

// Writes a random Llama-family checkpoint in Hugging Face layout to `dir` with
// tests/tools/make_tiny_llama.py `flags` (e.g. {"--seed", "3", "--kv-heads", "2"}) and returns
// `dir`. Fails the calling test if the script fails.
std::filesystem::path MakeTinyLlama(const std::filesystem::path& dir,
                                    const std::vector<std::string>& flags);

// `count` JSONL rows {"prompt": "twice I =", "completion": "2I"} for I = 0..count-1: a task a
// tiny model learns in a few hundred steps, for tests that train.
std::string TwiceRows(int count);

// The whole of a file; empty when it cannot be read.
std::string ReadText(const std::filesystem::path& path);

// Number of lines in `text` that start with `prefix`.
int CountLinesStartingWith(const std::string& text, const std::string& prefix);

}  // namespace tune::testing
