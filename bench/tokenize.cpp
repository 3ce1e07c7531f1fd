// Encoding throughput of a model folder's tokenizer, loaded through the plugin host as `tune
// train` loads it: every line of TEXT_FILE encoded once per round. Prints one JSON line with the
// tokens, the bytes and the best round's MB/s; bench/tokenize.sh runs it against the peers.
//
//   bench_tokenize MODEL_DIR TEXT_FILE [ROUNDS]
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "plugin_host/plugin_host.h"
#include "tune/tokenizer.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: bench_tokenize MODEL_DIR TEXT_FILE [ROUNDS]\n";
    return 1;
  }
  const int rounds = argc > 3 ? std::max(1, std::atoi(argv[3])) : 3;
  try {
    std::ifstream in(argv[2]);
    if (!in) throw tune::UserError(std::string(argv[2]) + ": cannot read");
    std::vector<std::string> lines;
    size_t bytes = 0;
    for (std::string line; std::getline(in, line);) {
      bytes += line.size();
      lines.push_back(std::move(line));
    }
    tune::PluginHost host;
    host.Load({tune::BuiltinPluginDir()});
    const auto tokenizer = host.LoadTokenizer(argv[1]);
    size_t tokens = 0;
    double best = 1e300;
    for (int round = 0; round < rounds; ++round) {
      tokens = 0;
      const auto start = std::chrono::steady_clock::now();
      for (const std::string& line : lines) tokens += tokenizer->Encode(line).size();
      best = std::min(
          best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::cout << "{\"impl\": \"tune\", \"tokens\": " << tokens << ", \"bytes\": " << bytes
              << ", \"seconds\": " << best
              << ", \"mb_per_second\": " << static_cast<double>(bytes) / 1e6 / best << "}\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
