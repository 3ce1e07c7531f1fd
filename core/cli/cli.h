// The `tune` command line. main() only calls RunCli; everything here is testable in-process.
#pragma once

namespace tune {

// Exit codes: 0 success, 1 the user's input or environment was refused (one "error: " line on
// stderr says why), 2 an internal error in tune.
int RunCli(int argc, char** argv);

}  // namespace tune
