// A registry server (tune serve, already running) against the registry folder it could have been:
// registering a 64 MiB adapter locally and through the server, alternating; the object bytes a
// second registration of the same adapter sends; then 16 runs logging P points each at once, as
// fast as they can, through the server (points taken per second, until the last run finished and
// its points are on the server) while version lists are asked for, timing each list; then the
// same for five seconds at a paced rate (20,000 points a second in all). Prints one JSON line
// per measurement.
//
//   bench_registry_server URL TOKEN WORK_DIR [--rounds N] [--points P] [--runs R]
//                         [--paced-rate POINTS_PER_S]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench_adapter.h"
#include "registry/http_client.h"
#include "registry/registry.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using tune::Registry;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

using tune::bench::MakeAdapter;

tune::VersionRecord Record(const std::string& run_id) {
  tune::VersionRecord r;
  r.method = "lora";
  r.params = {{"adapter.rank", int64_t{16}}};
  r.scores = {{"exact_match", 0.5}};
  r.run_id = run_id;
  return r;
}

void Line(const std::string& what, const nlohmann::json& figures) {
  nlohmann::json line = figures;
  line["what"] = what;
  std::cout << line.dump() << std::endl;
}

int64_t BytesReceived(const tune::registry_internal::HttpClient& admin) {
  return nlohmann::json::parse(admin.Get("/api/health").body)
      .at("object_bytes_received")
      .get<int64_t>();
}

// `runs` runs, each its own client as each training process is, logging `points` points each:
// as fast as they can (`rate` 0) or together `rate` points a second; a reader asks for a page of
// the version list all along. Prints the points taken per second and the lists' times.
void LogAtOnce(const std::string& url, const Registry::OpenOptions& access,
               const tune::registry_internal::HttpClientOptions& admin_options, int runs,
               int64_t points, int64_t rate) {
  std::atomic<bool> stop = false;
  std::vector<double> list_ms;
  std::thread reader([&] {
    const tune::registry_internal::HttpClient http(admin_options);
    while (!stop) {
      const auto start = Clock::now();
      const auto answer = http.Get("/api/versions?limit=50");
      if (answer.status != 200) throw std::runtime_error("list: " + answer.body);
      list_ms.push_back(1000 * SecondsSince(start));
    }
  });
  std::vector<std::thread> loggers;
  std::vector<std::string> run_ids(static_cast<size_t>(runs));
  std::vector<int64_t> logged(static_cast<size_t>(runs), 0);
  const auto start = Clock::now();
  for (int r = 0; r < runs; ++r) {
    loggers.emplace_back([&, r] {
      try {
        const auto client = Registry::Open(url, Registry::OpenMode::kReadWrite, access);
        const std::string run = client->CreateRun({"bench", std::nullopt, std::nullopt, ""});
        run_ids[static_cast<size_t>(r)] = run;
        int64_t step = 0;
        while (step < points) {
          ++step;
          client->LogMetrics(run, step, {{"loss", 1.0 / static_cast<double>(step)}});
          if (rate > 0) {
            std::this_thread::sleep_until(
                start + std::chrono::microseconds(step * runs * 1'000'000 / rate));
          } else if (step % 1000 == 0) {
            std::this_thread::yield();
          }
        }
        client->FinishRun(run, tune::RunStatus::kFinished);  // what it holds reaches the server
        logged[static_cast<size_t>(r)] = step;
      } catch (const std::exception& e) {
        std::cerr << "error: run " << r << ": " << e.what() << "\n";
      }
    });
  }
  for (std::thread& logger : loggers) logger.join();
  const double elapsed = SecondsSince(start);
  stop = true;
  reader.join();
  const auto remote = Registry::Open(url, Registry::OpenMode::kReadOnly, access);
  int64_t taken = 0;
  for (const std::string& run : run_ids) {
    taken += static_cast<int64_t>(remote->GetRunMetrics(run).size());
  }
  int64_t total = 0;
  for (int64_t n : logged) total += n;
  std::sort(list_ms.begin(), list_ms.end());
  const auto percentile = [&](double p) {
    return list_ms.empty()
               ? 0.0
               : list_ms[std::min(list_ms.size() - 1, static_cast<size_t>(p * list_ms.size()))];
  };
  // Appended, not " at " + ...: GCC 12 reports a false -Wrestrict for that.
  std::string how = " as fast as they can";
  if (rate > 0) how = std::string(" at ").append(std::to_string(rate)).append(" points/s");
  Line("metrics of " + std::to_string(runs) + " runs at once" + how,
       {{"seconds", elapsed},
        {"points_logged", total},
        {"points_taken", taken},
        {"points_per_s", static_cast<double>(taken) / elapsed}});
  Line("version list (a page of 50) while they log" + how, {{"requests", list_ms.size()},
                                                            {"p50_ms", percentile(0.5)},
                                                            {"p90_ms", percentile(0.9)},
                                                            {"p99_ms", percentile(0.99)}});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: bench_registry_server URL TOKEN WORK_DIR [--rounds N] [--points P] "
                 "[--runs R] [--paced-rate POINTS_PER_S]\n";
    return 2;
  }
  const std::string url = argv[1];
  const std::string token = argv[2];
  const fs::path work = argv[3];
  int rounds = 3;
  int64_t points = 20000;
  int runs = 16;
  int64_t paced_rate = 20000;
  for (int i = 4; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--rounds") rounds = std::stoi(argv[i + 1]);
    if (flag == "--points") points = std::stoll(argv[i + 1]);
    if (flag == "--runs") runs = std::stoi(argv[i + 1]);
    if (flag == "--paced-rate") paced_rate = std::stoll(argv[i + 1]);
  }
  try {
    const Registry::OpenOptions access{{}, {token, ""}};
    const auto remote = Registry::Open(url, Registry::OpenMode::kReadWrite, access);
    const auto local = Registry::Open((work / "local").string(), Registry::OpenMode::kCreate);
    tune::registry_internal::HttpClientOptions admin_options;
    admin_options.base_url = url;
    admin_options.token = token;
    const tune::registry_internal::HttpClient admin(admin_options);
    std::mt19937_64 random(7);
    constexpr size_t kBytes = size_t{64} << 20;
    const double megabytes = 64.0;
    for (int round = 0; round < rounds; ++round) {
      const fs::path adapter =
          MakeAdapter(work / fs::path("a").concat(std::to_string(round)), kBytes, random);
      // Alternating which goes first, so neither always meets the other's page cache.
      for (int turn = 0; turn < 2; ++turn) {
        const bool to_server = (round + turn) % 2 == 0;
        Registry& registry = to_server ? *remote : *local;
        const auto start = Clock::now();
        registry.Register("bench", Record(""), adapter);
        const double s = SecondsSince(start);
        Line(to_server ? "register 64MB through the server" : "register 64MB in a folder",
             {{"seconds", s}, {"mb_per_s", megabytes / s}});
      }
      const int64_t before = BytesReceived(admin);
      const auto start = Clock::now();
      remote->Register("bench", Record(""), adapter);  // the same bytes, another version
      Line(
          "register the same 64MB again through the server",
          {{"seconds", SecondsSince(start)}, {"object_bytes_sent", BytesReceived(admin) - before}});
      fs::remove_all(adapter);
    }

    // As fast as they can (what the server takes), then at the rate the issue names (what a
    // person listing versions meanwhile sees).
    LogAtOnce(url, access, admin_options, runs, points, 0);
    LogAtOnce(url, access, admin_options, runs, paced_rate * 5 / runs, paced_rate);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
