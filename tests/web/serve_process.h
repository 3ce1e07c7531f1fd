// `tune serve` as a process of its own, for the tests that talk to it over sockets. Private to
// tests/web.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/test_support.h"

extern char** environ;

namespace tune::testing {

namespace fs = std::filesystem;

// `tune serve` on `port` (0: a free one), stopped with SIGTERM when destroyed. Reads are open
// (--open-reads) unless `extra` holds "--closed-reads", which is taken out: the tests of tokens
// close them.
class ServeProcess {
 public:
  explicit ServeProcess(const fs::path& registry, std::vector<std::string> extra = {}, int port = 0)
      : log_(registry.parent_path() / ("serve-" + std::to_string(++started_) + ".log")) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    std::vector<std::string> args = {TUNE_BINARY,       "serve",  "--registry",
                                     registry.string(), "--port", std::to_string(port)};
    const auto closed = std::find(extra.begin(), extra.end(), "--closed-reads");
    if (closed != extra.end()) {
      extra.erase(closed);
    } else {
      args.push_back("--open-reads");
    }
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    // "serving registry ... at http://127.0.0.1:PORT", then the token it made (none when it was
    // given one).
    const int expected_lines =
        std::find(extra.begin(), extra.end(), "--token-file") != extra.end() ? 1 : 2;
    std::string out;
    char c;
    int lines = 0;
    pollfd fd{fds[0], POLLIN, 0};
    while (lines<expected_lines&& ::poll(&fd, 1, 60000)> 0 && ::read(fds[0], &c, 1) == 1) {
      out += c;
      lines += c == '\n';
    }
    ::close(fds[0]);
    const size_t colon = out.rfind(':', out.find('\n'));
    if (colon != std::string::npos) port_ = std::atoi(out.c_str() + colon + 1);
    const std::string said = "owner's token (admin, for this run of the server): ";
    const size_t token = out.find(said);
    if (token != std::string::npos) {
      token_ = out.substr(token + said.size(), out.find('\n', token) - token - said.size());
    }
    first_lines_ = out;
  }
  ~ServeProcess() { Stop(SIGTERM); }
  // Ends it at once (a crash, a power cut), or as asked (SIGTERM).
  void Stop(int signal) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = 0;
  }
  int port() const { return port_; }
  const std::string& token() const { return token_; }
  const std::string& first_lines() const { return first_lines_; }
  std::string origin() const {
    return std::string("http://127.0.0.1:").append(std::to_string(port_));
  }
  std::string url() const { return origin(); }
  std::map<std::string, std::string> Auth() const {
    return {{"Authorization", "Bearer " + token_}, {"Origin", origin()}};
  }
  // What the server wrote to its standard error so far.
  std::string Log() const { return ReadText(log_); }

 private:
  static inline int started_ = 0;
  fs::path log_;
  pid_t pid_ = 0;
  int port_ = 0;
  std::string token_;
  std::string first_lines_;
};

}  // namespace tune::testing
