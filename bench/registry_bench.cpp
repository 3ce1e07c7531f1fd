// Registry throughput: register and fetch of an adapter of a given size against copying the same
// bytes with cp (and cp followed by sync of the copies, since register fsyncs what it stores),
// and listing a registry of many versions. Prints one JSON line per measurement round.
//
//   bench_registry WORK_DIR [--rounds N] [--versions N] [--sizes-mb 1,64]
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_adapter.h"
#include "registry/registry.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void Run(std::vector<std::string> argv) {
  std::vector<char*> args;
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) {
    throw std::runtime_error("cannot run " + argv[0]);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error(argv[0] + " failed");
}

using tune::bench::MakeAdapter;

tune::VersionRecord Record(int64_t rank, double score) {
  tune::VersionRecord r;
  r.method = "lora";
  r.params = {{"adapter.rank", rank}, {"adapter.alpha", 2 * rank}, {"optimizer.lr", 2e-4}};
  r.config_toml = "[adapter]\nmethod = \"lora\"\nrank = " + std::to_string(rank) + "\n";
  r.scores = {{"exact_match", score}, {"token_f1", score}};
  for (int64_t step = 0; step <= 200; step += 10) r.curve.push_back({step, 2.0 / (1 + step), 2e-4});
  return r;
}

void Line(const std::string& what, double seconds, double megabytes) {
  std::printf("{\"what\": \"%s\", \"seconds\": %.6f", what.c_str(), seconds);
  if (megabytes > 0) std::printf(", \"mb_per_s\": %.1f", megabytes / seconds);
  std::printf("}\n");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_registry WORK_DIR [--rounds N] [--versions N] [--sizes-mb 1,64]\n";
    return 2;
  }
  const fs::path work = argv[1];
  int rounds = 5;
  int versions = 10000;
  std::vector<size_t> sizes_mb = {1, 64};
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--rounds") rounds = std::stoi(argv[i + 1]);
    if (flag == "--versions") versions = std::stoi(argv[i + 1]);
    if (flag == "--sizes-mb") {
      sizes_mb.clear();
      std::istringstream list(argv[i + 1]);
      for (std::string item; std::getline(list, item, ',');) sizes_mb.push_back(std::stoul(item));
    }
  }
  try {
    std::mt19937_64 random(1);
    for (const size_t mb : sizes_mb) {
      const fs::path dir = work / ("size-" + std::to_string(mb));
      auto registry = tune::Registry::Open(dir / "registry", tune::Registry::OpenMode::kCreate);
      const double megabytes = static_cast<double>(mb);
      const std::string label = std::to_string(mb) + "MB";
      for (int round = 0; round < rounds; ++round) {
        const fs::path source =
            MakeAdapter(dir / ("source-" + std::to_string(round)), mb << 20, random);
        Run({"sync"});  // start each round with no dirty pages from making the source

        auto start = Clock::now();
        const int64_t version = registry->Register("bench", Record(16, 0.5), source);
        Line("register " + label, SecondsSince(start), megabytes);

        const fs::path fetched = dir / "fetched";
        start = Clock::now();
        registry->Fetch("bench:" + std::to_string(version), fetched);
        Line("fetch " + label, SecondsSince(start), megabytes);

        const fs::path copied = dir / "copied";
        start = Clock::now();
        Run({"cp", "-r", source.string(), copied.string()});
        Line("cp " + label, SecondsSince(start), megabytes);
        fs::remove_all(copied);

        start = Clock::now();
        Run({"cp", "-r", source.string(), copied.string()});
        Run({"sync", (copied / "adapter_config.json").string(),
             (copied / "adapter_model.safetensors").string(), copied.string()});
        Line("cp+sync " + label, SecondsSince(start), megabytes);

        fs::remove_all(copied);
        fs::remove_all(fetched);
        fs::remove_all(source);
      }
    }

    if (versions > 0) {
      const fs::path dir = work / "many";
      const fs::path source = MakeAdapter(dir / "source", 4096, random);
      {
        auto registry = tune::Registry::Open(dir / "registry", tune::Registry::OpenMode::kCreate);
        const auto start = Clock::now();
        for (int i = 0; i < versions; ++i) {
          // The same bytes every time: this measures records, not file copies.
          registry->Register("sweep-" + std::to_string(i % 10),
                             Record(1 << (i % 6), (i % 100) / 100.0), source);
        }
        Line("register " + std::to_string(versions) + " versions (each)",
             SecondsSince(start) / versions, 0);
      }
      auto registry = tune::Registry::Open(dir / "registry", tune::Registry::OpenMode::kReadOnly);
      // The first list after a write parses every record; later ones reuse the parse (a read
      // view lives until the next write), as a server answering many requests does.
      const auto first = Clock::now();
      const size_t parsed = registry->List().size();
      Line("ls " + std::to_string(parsed) + " versions, first after a write", SecondsSince(first),
           0);
      for (int round = 0; round < rounds; ++round) {
        auto start = Clock::now();
        const size_t all = registry->List().size();
        Line("ls " + std::to_string(all) + " versions", SecondsSince(start), 0);
        start = Clock::now();
        const size_t some =
            registry
                ->List({std::nullopt, "scores.exact_match > 0.9 and adapter.rank = 16",
                        "-scores.exact_match"})
                .size();
        Line("ls --filter --sort of " + std::to_string(all) + " (" + std::to_string(some) +
                 " match)",
             SecondsSince(start), 0);
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
