// A mutation fuzzer for libFuzzer targets, for builds without clang (CI builds with GCC): it calls
// the target's LLVMFuzzerTestOneInput on the seed corpus, then on mutations of it (bytes changed,
// inserted, deleted, runs repeated, seeds spliced) until the time is up. It has no coverage
// feedback, so it finds less than libFuzzer does in the same time; the seeds and the repetition
// of runs (e.g. thousands of '(') make up for some of that.
//
//   FUZZER [--seconds N] [--seed N] [--max-len N] CORPUS_DIR...
//
// Exits 0 when every input returned; a crash or sanitizer report ends it as the target's abort()
// does, after the input that caused it was written to ./fuzz-crash-input. The same --seed gives
// the same inputs.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

namespace {

// The input being run, for the crash handlers: written before each run, read only on a crash.
std::string current_input;

void WriteCurrentInput() {
  const int fd = ::open("fuzz-crash-input", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  size_t written = 0;
  while (written < current_input.size()) {
    const ssize_t n = ::write(fd, current_input.data() + written, current_input.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  ::close(fd);
  static const char kSaid[] = "fuzz: the input that crashed is in ./fuzz-crash-input\n";
  [[maybe_unused]] const ssize_t said = ::write(2, kSaid, sizeof(kSaid) - 1);
}

void OnCrashSignal(int signal) {
  WriteCurrentInput();
  ::signal(signal, SIG_DFL);
  ::raise(signal);
}

std::vector<std::string> ReadCorpus(const std::vector<std::string>& dirs) {
  std::vector<std::string> seeds;
  for (const std::string& dir : dirs) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      std::stringstream bytes;
      bytes << in.rdbuf();
      seeds.push_back(bytes.str());
    }
  }
  if (seeds.empty()) seeds.emplace_back();
  return seeds;
}

class Mutator {
 public:
  Mutator(const std::vector<std::string>& seeds, uint64_t seed, size_t max_len)
      : seeds_(seeds), random_(seed), max_len_(max_len) {}

  std::string Next() {
    std::string input = seeds_[Below(seeds_.size())];
    const size_t mutations = 1 + Below(4);
    for (size_t i = 0; i < mutations; ++i) Mutate(input);
    if (input.size() > max_len_) input.resize(max_len_);
    return input;
  }

 private:
  size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(random_() % n); }

  // A byte that is likely to matter: one of the seeds' bytes most of the time, any byte else.
  char SomeByte() {
    const std::string& seed = seeds_[Below(seeds_.size())];
    if (!seed.empty() && Below(4) != 0) return seed[Below(seed.size())];
    return static_cast<char>(Below(256));
  }

  void Mutate(std::string& input) {
    const size_t at = Below(input.size() + 1);
    switch (Below(7)) {
      case 0:  // change a byte
        if (!input.empty()) input[Below(input.size())] = SomeByte();
        break;
      case 1:  // insert a byte
        input.insert(at, 1, SomeByte());
        break;
      case 2:  // delete a range
        if (!input.empty()) input.erase(at, 1 + Below(8));
        break;
      case 3: {  // repeat a short run many times: deep nesting, long names, huge numbers
        const size_t length = 1 + Below(3);
        const std::string run =
            at + length <= input.size() ? input.substr(at, length) : std::string(1, SomeByte());
        std::string repeated;
        for (size_t n = 1 + Below(Below(4) == 0 ? 20000 : 64); n > 0; --n) repeated += run;
        input.insert(at, repeated);
        break;
      }
      case 4: {  // splice: a piece of another seed
        const std::string& other = seeds_[Below(seeds_.size())];
        const size_t from = Below(other.size() + 1);
        input.insert(at, other.substr(from, Below(other.size() - from + 1)));
        break;
      }
      case 5:  // flip a bit
        if (!input.empty()) input[Below(input.size())] ^= static_cast<char>(1 << Below(8));
        break;
      default:  // cut the end off
        input.resize(at);
        break;
    }
  }

  const std::vector<std::string>& seeds_;
  std::mt19937_64 random_;
  size_t max_len_;
};

}  // namespace

int main(int argc, char** argv) {
  double seconds = 10;
  uint64_t seed = std::random_device{}();
  size_t max_len = 1 << 16;
  std::vector<std::string> dirs;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--seconds" || arg == "--seed" || arg == "--max-len") && i + 1 < argc) {
      const char* value = argv[++i];
      if (arg == "--seconds") seconds = std::strtod(value, nullptr);
      if (arg == "--seed") seed = std::strtoull(value, nullptr, 10);
      if (arg == "--max-len") max_len = std::strtoull(value, nullptr, 10);
    } else if (!arg.empty() && arg[0] != '-') {
      dirs.push_back(arg);
    } else {
      std::fprintf(stderr, "usage: %s [--seconds N] [--seed N] [--max-len N] CORPUS_DIR...\n",
                   argv[0]);
      return 2;
    }
  }
  // On a stack of its own, so a stack overflow (deep recursion) still gets its input written.
  static std::vector<char> crash_stack(1 << 16);
  stack_t alternate{};
  alternate.ss_sp = crash_stack.data();
  alternate.ss_size = crash_stack.size();
  ::sigaltstack(&alternate, nullptr);
  struct sigaction action {};
  action.sa_handler = OnCrashSignal;
  action.sa_flags = SA_ONSTACK;
  for (int signal : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL})
    ::sigaction(signal, &action, nullptr);
  if (__sanitizer_set_death_callback != nullptr) __sanitizer_set_death_callback(WriteCurrentInput);

  const std::vector<std::string> seeds = ReadCorpus(dirs);
  const auto run = [](const std::string& input) {
    current_input = input;
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(current_input.data()),
                           current_input.size());
  };
  for (const std::string& input : seeds) run(input);
  Mutator mutator(seeds, seed, max_len);
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  uint64_t runs = seeds.size();
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 64; ++i, ++runs) run(mutator.Next());
  }
  std::printf("fuzz: %llu inputs from %zu seeds (--seed %llu), none crashed\n",
              static_cast<unsigned long long>(runs), seeds.size(),
              static_cast<unsigned long long>(seed));
  return 0;
}
