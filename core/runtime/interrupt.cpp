#include "runtime/interrupt.h"

#include <unistd.h>

#include <atomic>

namespace tune {
namespace {

std::atomic<int> requested{0};

extern "C" void OnInterrupt(int signal) {
  if (requested.exchange(signal) != 0) {  // the second signal: stop now
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  static constexpr char kMessage[] =
      "\ntune: stopping after this step (a checkpoint is written when checkpoints are on); "
      "signal again to stop at once\n";
  [[maybe_unused]] const ssize_t written = write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
}

}  // namespace

InterruptScope::InterruptScope() {
  requested = 0;
  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, &previous_int_);
  sigaction(SIGTERM, &action, &previous_term_);
}

InterruptScope::~InterruptScope() {
  sigaction(SIGINT, &previous_int_, nullptr);
  sigaction(SIGTERM, &previous_term_, nullptr);
}

int InterruptRequested() { return requested.load(); }

}  // namespace tune
