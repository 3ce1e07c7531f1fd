#include "support/test_support.h"
#include "util/error.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include <gtest/gtest.h>

extern char** environ;

namespace tune::testing {

std::string ErrorOf(const std::function<void()>& call) {
  try {
    call();
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}
namespace fs = std::filesystem;

namespace {

// This process's environment as NAME=VALUE strings, with `env`'s variables set (an empty value
// unsets one).
std::vector<std::string> EnvironmentWith(const std::map<std::string, std::string>& env) {
  std::map<std::string, std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text(*entry);
    const size_t equals = text.find('=');
    if (equals != std::string::npos) environment[text.substr(0, equals)] = text.substr(equals + 1);
  }
  for (const auto& [name, value] : env) {
    if (value.empty()) {
      environment.erase(name);
    } else {
      environment[name] = value;
    }
  }
  std::vector<std::string> strings;
  for (const auto& [name, value] : environment) strings.push_back(name + "=" + value);
  return strings;
}

}  // namespace

ChildProcess::ChildProcess(std::vector<std::string> argv,
                           const std::map<std::string, std::string>& env) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  std::vector<char*> args;
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  std::vector<std::string> environment = EnvironmentWith(env);
  std::vector<char*> envp;
  for (std::string& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);
  const int spawned = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  out_ = fds[0];
  if (spawned != 0) throw std::runtime_error("cannot run " + argv[0]);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) Kill();
  ::close(out_);
}

std::vector<std::string> ChildProcess::ReadLines(int timeout_ms, size_t enough) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) break;
    pollfd fd{out_, POLLIN, 0};
    if (::poll(&fd, 1, static_cast<int>(left)) <= 0) break;
    char buffer[4096];
    const ssize_t n = ::read(out_, buffer, sizeof buffer);
    if (n <= 0) break;
    pending_.append(buffer, static_cast<size_t>(n));
    if (static_cast<size_t>(std::count(pending_.begin(), pending_.end(), '\n')) >= enough) break;
  }
  std::vector<std::string> lines;
  size_t newline;
  while ((newline = pending_.find('\n')) != std::string::npos) {
    lines.push_back(pending_.substr(0, newline));
    pending_.erase(0, newline + 1);
  }
  return lines;
}

void ChildProcess::Kill() {
  if (pid_ > 0) ::kill(pid_, SIGKILL);
  Wait();
}

int ChildProcess::Wait() {
  if (pid_ > 0) {
    waitpid(pid_, &status_, 0);
    pid_ = -1;
  }
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
}

bool ChildProcess::Exited() {
  if (pid_ > 0 && waitpid(pid_, &status_, WNOHANG) == pid_) pid_ = -1;
  return pid_ < 0;
}

TempDir::TempDir() {
  std::random_device random;
  path_ = fs::temp_directory_path() /
          ("tune-test-" + std::to_string(getpid()) + "-" + std::to_string(random()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

fs::path TempDir::Write(const std::string& name, const std::string& content) const {
  const fs::path file = path_ / name;
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << content;
  return file;
}

namespace {
std::string ReadAll(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}
}  // namespace

CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::map<std::string, std::string>& env) {
  TempDir capture;
  const fs::path out_file = capture.path() / "stdout";
  const fs::path err_file = capture.path() / "stderr";

  std::vector<std::string> env_strings = EnvironmentWith(env);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (std::string& s : args) argp.push_back(s.data());
  argp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argp[0], &actions, nullptr, argp.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) throw std::runtime_error("cannot run " + argv[0]);
  int status = 0;
  waitpid(pid, &status, 0);

  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadAll(out_file);
  result.err = ReadAll(err_file);
  return result;
}

CommandResult RunTune(const std::vector<std::string>& args,
                      const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv = {TUNE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, env);
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

CommandResult RunTuneIn(const fs::path& dir, const std::vector<std::string>& args,
                        const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv = {"/bin/bash", "-c", "cd \"$0\" && exec \"$@\"", dir.string(),
                                   TUNE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, env);
}

CommandResult SignalTuneWhen(const std::vector<std::string>& args, const std::string& ready,
                             const std::string& signal) {
  const TempDir scratch;
  const fs::path err = scratch.path() / "stderr";
  const std::string script = "\"$0\" \"$@\" >/dev/null 2>\"" + err.string() + "\" & pid=$!\n" +
                             "until " + ready + "; do\n" +
                             "  kill -0 $pid 2>/dev/null || exit 3; sleep 0.002; done\n" +
                             "kill -" + signal + " $pid; wait $pid; echo $?\n";
  std::vector<std::string> argv = {"/bin/bash", "-c", script, TUNE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  const CommandResult shell = RunCommand(argv);
  CommandResult run;
  std::ifstream in(err);
  std::stringstream text;
  text << in.rdbuf();
  run.err = text.str();
  run.exit_code = shell.exit_code == 0 ? std::stoi(shell.out) : -1;
  return run;
}

std::string TwiceRows(int count) {
  std::string rows;
  for (int i = 0; i < count; ++i) {
    rows += "{\"prompt\": \"twice " + std::to_string(i) + " =\", \"completion\": \"" +
            std::to_string(2 * i) + "\"}\n";
  }
  return rows;
}

fs::path MakeTinyLlama(const fs::path& dir, const std::vector<std::string>& flags) {
  std::vector<std::string> argv = {
      kPython, (fs::path(TUNE_SOURCE_DIR) / "tests/tools/make_tiny_llama.py").string(),
      dir.string()};
  argv.insert(argv.end(), flags.begin(), flags.end());
  const CommandResult result = RunCommand(argv);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  return dir;
}

int CountLinesStartingWith(const std::string& text, const std::string& prefix) {
  int count = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) == 0) ++count;
  }
  return count;
}

}  // namespace tune::testing
