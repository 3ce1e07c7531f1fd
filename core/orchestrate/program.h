// Running a scheduler's command-line tools (sbatch, squeue, sacct, scontrol, scancel, sinfo) and
// reading what they print. No shell is involved: arguments are passed as they are.
//
// Threads: any; each call is its own process.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace tune {

struct ProgramResult {
  bool started = false;    // false: no such program on PATH (or it could not be run)
  bool timed_out = false;  // killed after its timeout
  int exit_code = -1;      // -1 unless it exited
  std::string out;
  std::string err;
};

// Runs `argv` (argv[0] looked up on PATH) with `input` on its standard input, and waits for it at
// most `timeout`, killing it then.
ProgramResult RunProgram(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const std::string& input = "");

// The full path of an executable `name` on PATH; empty when there is none.
std::string FindOnPath(const std::string& name);

}  // namespace tune
