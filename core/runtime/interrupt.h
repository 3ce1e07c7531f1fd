// SIGINT and SIGTERM as a request to stop long work cleanly. SIGTERM is how clusters preempt jobs;
// SIGINT is Ctrl-C. While an InterruptScope lives, the first of them sets a flag that the work
// polls between steps (InterruptRequested); a second ends the process at once, as the signal's
// default action would.
//
// Threading: install the scope on the main thread, one at a time; InterruptRequested may be read
// from any thread.
#pragma once

#include <csignal>
#include <stdexcept>
#include <string>

namespace tune {

class InterruptScope {
 public:
  InterruptScope();   // installs the handlers
  ~InterruptScope();  // restores the previous ones
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

 private:
  struct sigaction previous_int_ {};
  struct sigaction previous_term_ {};
};

// The signal that asked to stop (SIGINT or SIGTERM), or 0.
int InterruptRequested();

// Thrown by work that stopped because InterruptRequested(): what() says where it stopped and how
// to continue. The CLI prints it and exits with 128 + signal, the shell's status for a signal.
class Interrupted : public std::runtime_error {
 public:
  Interrupted(int signal, const std::string& what) : std::runtime_error(what), signal_(signal) {}
  int signal() const { return signal_; }

 private:
  int signal_;
};

}  // namespace tune
