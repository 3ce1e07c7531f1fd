#include "orchestrate/trial_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string_view>

#include "util/error.h"

namespace tune {
namespace {

namespace fs = std::filesystem;

// `channel_fd` (close-on-exec here) stays open in the child, which runs `argv`.
pid_t Spawn(const std::vector<std::string>& argv, const std::filesystem::path& log,
            const std::string& cuda_visible_devices, int channel_fd) {
  // Everything the child needs is made before fork: between fork and exec a child of a
  // multithreaded process may only make async-signal-safe calls (no allocation: another thread
  // may have held the allocator's lock at the fork).
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (!cuda_visible_devices.empty() &&
        std::string_view(*entry).starts_with("CUDA_VISIBLE_DEVICES=")) {
      continue;
    }
    environment.emplace_back(*entry);
  }
  if (!cuda_visible_devices.empty()) {
    environment.push_back("CUDA_VISIBLE_DEVICES=" + cuda_visible_devices);
  }
  std::vector<char*> envp;
  for (std::string& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);
  const std::string log_path = log.string();

  const pid_t driver = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw UserError("cannot start a trial process: fork failed");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != driver) _exit(127);  // the driver died before prctl took effect
    fcntl(channel_fd, F_SETFD, 0);
    const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  return pid;
}

class LocalProcess : public RunningTrial {
 public:
  LocalProcess(pid_t pid, int channel_fd, std::string host)
      : pid_(pid),
        pidfd_(static_cast<int>(syscall(SYS_pidfd_open, pid, 0))),
        channel_(channel_fd),
        host_(std::move(host)) {}

  ~LocalProcess() override {
    if (pid_ != 0) Kill();
  }

  TrialChannel* channel() override { return &channel_; }
  TrialPlace place() const override { return {host_, ""}; }

  // Readable once the process has exited; -1 where the kernel has no pidfd_open.
  int pidfd() const { return pidfd_; }

  std::optional<TrialExit> Exited() override { return Reap(WNOHANG); }

  TrialExit Kill() override {
    if (pid_ == 0) return exit_;
    kill(pid_, SIGKILL);
    return *Reap(0);
  }

 private:
  std::optional<TrialExit> Reap(int flags) {
    if (pid_ == 0) return exit_;
    int status = 0;
    if (waitpid(pid_, &status, flags) != pid_) return std::nullopt;
    pid_ = 0;
    if (pidfd_ >= 0) close(pidfd_);
    pidfd_ = -1;
    exit_.signaled = WIFSIGNALED(status);
    exit_.code = exit_.signaled ? WTERMSIG(status) : WEXITSTATUS(status);
    exit_.end = LocalAttemptEnd(exit_.signaled, exit_.code);
    return exit_;
  }

  pid_t pid_;
  int pidfd_;
  TrialChannel channel_;
  std::string host_;
  TrialExit exit_;
};

class LocalProcessRunner : public TrialRunner {
 public:
  LocalProcessRunner() {
    char self[4096];
    const ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (length <= 0) throw UserError("cannot find the tune executable (/proc/self/exe)");
    binary_.assign(self, static_cast<size_t>(length));
  }

  std::vector<std::unique_ptr<RunningTrial>> Start(std::span<const TrialLaunch> launches) override {
    std::vector<std::unique_ptr<RunningTrial>> started;
    for (const TrialLaunch& launch : launches) started.push_back(StartOne(launch));
    return started;
  }

  std::vector<std::unique_ptr<RunningTrial>> Adopt(std::span<const TrialLaunch> launches) override {
    return std::vector<std::unique_ptr<RunningTrial>>(launches.size());
  }

  void WaitForAny(std::span<RunningTrial* const> trials,
                  std::chrono::milliseconds timeout) override {
    std::vector<pollfd> fds;
    for (RunningTrial* trial : trials) {
      const auto* process = static_cast<LocalProcess*>(trial);
      fds.push_back({process->pidfd(), POLLIN, 0});  // poll skips negative descriptors
      if (!trial->channel()->closed()) fds.push_back({trial->channel()->fd(), POLLIN, 0});
    }
    poll(fds.data(), fds.size(), static_cast<int>(timeout.count()));
  }

 private:
  std::unique_ptr<RunningTrial> StartOne(const TrialLaunch& launch) {
    int sockets[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0) {
      throw UserError("cannot start a trial process: socketpair failed");
    }
    std::vector<std::string> argv = {binary_};
    argv.insert(argv.end(), launch.train_args.begin(), launch.train_args.end());
    // An interrupted trial continues from its checkpoint; anything else starts clean.
    const fs::path run_dir = TrialRunFolder(launch);
    const bool has_checkpoint =
        fs::is_directory(run_dir / "checkpoints") && !fs::is_empty(run_dir / "checkpoints");
    argv.push_back(has_checkpoint ? "--resume" : "--restart");
    argv.insert(argv.end(), {"--channel-fd", std::to_string(sockets[1])});
    pid_t pid;
    try {
      pid = Spawn(argv, launch.log, launch.cuda_visible_devices, sockets[1]);
    } catch (...) {
      close(sockets[0]);
      close(sockets[1]);
      throw;
    }
    close(sockets[1]);
    return std::make_unique<LocalProcess>(pid, sockets[0], host_);
  }

  std::string binary_;
  std::string host_ = HostName();
};

}  // namespace

std::string TrialExit::Describe() const {
  if (!detail.empty()) return detail;
  if (signaled) {
    return "killed by signal " + std::to_string(code) +
           (code == SIGKILL ? " (out of memory?)" : "");
  }
  return "exited with status " + std::to_string(code);
}

AttemptEnd LocalAttemptEnd(bool signaled, int code) {
  if (signaled) return AttemptEnd::kKilled;
  if (code == 0) return AttemptEnd::kFinished;
  if (code == 128 + SIGINT || code == 128 + SIGTERM) return AttemptEnd::kInterrupted;
  return AttemptEnd::kFailed;
}

fs::path TrialRunFolder(const TrialLaunch& launch) {
  const std::vector<std::string>& args = launch.train_args;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "-o" || args[i] == "--output") return args[i + 1];
  }
  return {};
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

std::unique_ptr<TrialRunner> MakeLocalProcessRunner() {
  return std::make_unique<LocalProcessRunner>();
}

}  // namespace tune
