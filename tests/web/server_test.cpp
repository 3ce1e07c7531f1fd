// `tune serve` over real sockets: the API against a running server on a temporary registry,
// promotions with their token, Host and Origin checks, path traversal, body caps, downloads
// with Range, and the server living beside writers in other processes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "registry/local_registry.h"
#include "registry/registry_test_util.h"
#include "support/test_support.h"
#include "util/sha256.h"
#include "web/serve_process.h"

extern char** environ;

namespace tune {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::TempDir;

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

// One HTTP/1.1 request on a fresh connection to 127.0.0.1:port; `target` is sent as written
// (already percent-encoded).
HttpResult Http(int port, const std::string& method, const std::string& target,
                const std::map<std::string, std::string>& headers = {},
                const std::string& body = "") {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return {};
  }
  std::string request = method + " " + target + " HTTP/1.1\r\n";
  if (!headers.count("Host"))
    request.append("Host: 127.0.0.1:").append(std::to_string(port)).append("\r\n");
  for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
  if (!body.empty() || method == "POST") {
    request.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  request += "Connection: close\r\n\r\n" + body;
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string response;
  char buffer[65536];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0;) {
    response.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  HttpResult result;
  const size_t end = response.find("\r\n\r\n");
  if (end == std::string::npos || response.size() < 12) return result;
  result.status = std::stoi(response.substr(9, 3));
  size_t line = response.find("\r\n") + 2;
  while (line < end) {
    const size_t next = response.find("\r\n", line);
    const std::string header = response.substr(line, next - line);
    const size_t colon = header.find(':');
    std::string name = header.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    result.headers[name] = header.substr(header.find_first_not_of(' ', colon + 1));
    line = next + 2;
  }
  result.body = response.substr(end + 4);
  return result;
}

using Server = testing::ServeProcess;

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = LocalRegistry::Open(RegistryDir(), Registry::OpenMode::kCreate);
    for (int i = 1; i <= 3; ++i) {
      // Version 2 answered with markup, as a model may.
      const std::string prediction = i == 2 ? "<img src=x onerror=window.__xss=1>" : "3";
      const fs::path samples = dir_.Write(std::string("eval-").append(std::to_string(i)),
                                          json{{"line", 1},
                                               {"prompt", "add 1 2 ="},
                                               {"reference", "3"},
                                               {"prediction", prediction},
                                               {"scores", {{"exact_match", i == 2 ? 0.0 : 1.0}}},
                                               {"base_prediction", "5"},
                                               {"base_scores", {{"exact_match", 0.0}}}}
                                              .dump()
                                              .append("\n"));
      registry_->Register(
          "rank", testing::SampleRecord(2 << i, 0.1 * i),
          testing::MakeArtifact(dir_.path() / std::string("a").append(std::to_string(i)),
                                std::string("weights ").append(std::to_string(i))),
          samples);
    }
  }
  fs::path RegistryDir() const { return dir_.path() / "registry"; }

  TempDir dir_;
  std::unique_ptr<LocalRegistry> registry_;
};

TEST_F(ServeTest, ServesHealthVersionsFilteredAndSortedAndOneRecord) {
  const Server server(RegistryDir());
  ASSERT_GT(server.port(), 0) << server.first_lines();
  EXPECT_EQ(Http(server.port(), "GET", "/api/health").status, 200);

  HttpResult list = Http(server.port(), "GET",
                         "/api/versions?sort=-scores.exact_match&filter=adapter.rank%20%3E%204");
  ASSERT_EQ(list.status, 200) << list.body;
  json page = json::parse(list.body);
  EXPECT_EQ(page["total"], 2);
  EXPECT_EQ(page["versions"][0]["version"], 3);
  EXPECT_EQ(page["versions"][1]["version"], 2);
  EXPECT_FALSE(page["versions"][0].contains("config_toml"));

  list = Http(server.port(), "GET", "/api/versions?filter=scores.nope%20%3E%201");
  EXPECT_EQ(list.status, 400);
  EXPECT_NE(json::parse(list.body)["error"].get<std::string>().find("no version has the key"),
            std::string::npos);

  const HttpResult record = Http(server.port(), "GET", "/api/adapters/rank/versions/2");
  ASSERT_EQ(record.status, 200);
  EXPECT_EQ(json::parse(record.body)["params"]["adapter.rank"], 8);
  EXPECT_EQ(Http(server.port(), "GET", "/api/adapters/rank/versions/9").status, 404);
  EXPECT_EQ(Http(server.port(), "GET", "/api/adapters/nope/versions/1").status, 404);
  EXPECT_EQ(Http(server.port(), "GET", "/api/adapters/rank/versions/01").status, 400);
  const HttpResult eval = Http(server.port(), "GET", "/api/adapters/rank/versions/2/eval");
  ASSERT_EQ(eval.status, 200);
  EXPECT_EQ(json::parse(eval.body)[0]["prediction"], "<img src=x onerror=window.__xss=1>");
}

// A sweep as the registry knows it: each trial's run (live status and loss), parameters, and the
// version a finished trial became.
TEST_F(ServeTest, SweepsListTheirTrialsWithRunsAndVersions) {
  std::string running;
  {
    // A sweep's own Registry; destroying it writes the metrics it buffered.
    auto sweep = Registry::Open(RegistryDir(), Registry::OpenMode::kReadWrite);
    RunInfo second{"rank", "rank-1", 2, "[adapter]\nrank = 4\n"};
    second.params = {{"adapter.rank", int64_t{4}}, {"optimizer.lr", 0.001}};
    running = sweep->CreateRun(second);
    sweep->LogMetrics(running, 7, {{"loss", 1.25}});
    RunInfo first{"rank", "rank-1", 1, "[adapter]\nrank = 2\n"};
    first.params = {{"adapter.rank", int64_t{2}}};
    const std::string finished = sweep->CreateRun(first);
    sweep->FinishRun(finished, RunStatus::kFinished);
    VersionRecord record = testing::SampleRecord(2, 0.75);
    record.sweep = "rank-1";
    record.trial = 1;
    record.configuration = 1;
    sweep->Register("rank", record, testing::MakeArtifact(dir_.path() / "s1", "s1"));
  }
  const Server server(RegistryDir());
  const HttpResult result = Http(server.port(), "GET", "/api/sweeps/rank-1");
  ASSERT_EQ(result.status, 200) << result.body;
  const json sweep = json::parse(result.body);
  ASSERT_EQ(sweep["trials"].size(), 2u) << sweep.dump(2);
  EXPECT_EQ(sweep["trials"][0]["status"], "finished");
  EXPECT_EQ(sweep["trials"][0]["version"], "rank:4");
  EXPECT_EQ(sweep["trials"][0]["scores"]["exact_match"], 0.75);
  EXPECT_EQ(sweep["trials"][0]["configuration"], 1);
  EXPECT_FALSE(sweep["trials"][1].contains("configuration"));  // known once it registers
  EXPECT_EQ(sweep["trials"][1]["status"], "running");
  EXPECT_EQ(sweep["trials"][1]["params"]["optimizer.lr"], 0.001);
  EXPECT_EQ(sweep["trials"][1]["step"], 7);
  EXPECT_EQ(sweep["trials"][1]["loss"], 1.25);
  EXPECT_EQ(Http(server.port(), "GET", "/api/sweeps/none").status, 404);
  const HttpResult run = Http(server.port(), "GET", "/api/runs/" + running);
  ASSERT_EQ(run.status, 200) << run.body;
  EXPECT_EQ(json::parse(run.body)["metrics"][0]["values"]["loss"], 1.25);
  EXPECT_EQ(Http(server.port(), "GET", "/api/runs/ffffffffffffffff").status, 404);
  EXPECT_EQ(Http(server.port(), "GET", "/api/runs/nothex").status, 400);
  EXPECT_EQ(json::parse(Http(server.port(), "GET", "/api/sweeps").body).size(), 1u);
}

TEST_F(ServeTest, PagesAndScriptsComeWithAContentSecurityPolicy) {
  const Server server(RegistryDir());
  HttpResult page = Http(server.port(), "GET", "/");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<script src=\"/app.js\""), std::string::npos);
  EXPECT_NE(page.headers["content-security-policy"].find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(page.headers["x-content-type-options"], "nosniff");
  EXPECT_EQ(page.headers.count("access-control-allow-origin"), 0u);
  EXPECT_EQ(Http(server.port(), "GET", "/app.js").status, 200);
  EXPECT_EQ(Http(server.port(), "GET", "/nothing.html").status, 404);
}

// A version another process registers shows on the next request; a backup runs while serving.
TEST_F(ServeTest, AVersionRegisteredElsewhereShowsOnTheNextRequest) {
  const Server server(RegistryDir());
  ASSERT_EQ(json::parse(Http(server.port(), "GET", "/api/versions").body)["total"], 3);
  auto writer = Registry::Open(RegistryDir(), Registry::OpenMode::kReadWrite);
  writer->Register("other", testing::SampleRecord(), testing::MakeArtifact(dir_.path() / "o", "o"));
  // Every read sees every write that returned before it (registry.h): no waiting, whatever the
  // machine's speed.
  EXPECT_EQ(json::parse(Http(server.port(), "GET", "/api/versions").body)["total"], 4);
  const auto backup = testing::RunTune({"registry", "backup", (dir_.path() / "backup").string(),
                                        "--registry", RegistryDir().string()});
  EXPECT_EQ(backup.exit_code, 0) << backup.err;
  EXPECT_EQ(Http(server.port(), "GET", "/api/health").status, 200);
}

TEST_F(ServeTest, APromotionNeedsTheTokenAndThisServersHostAndOrigin) {
  const Server server(RegistryDir());
  ASSERT_FALSE(server.token().empty()) << server.first_lines();
  const std::string target = "/api/adapters/rank/aliases/production";
  const std::string body = R"({"version": 2, "expect_version": 0})";
  EXPECT_EQ(Http(server.port(), "POST", target, {}, body).status, 401);
  EXPECT_EQ(Http(server.port(), "POST", target, {{"Authorization", "Bearer wrong"}}, body).status,
            401);
  auto foreign = server.Auth();
  foreign["Origin"] = "http://evil.example";
  EXPECT_EQ(Http(server.port(), "POST", target, foreign, body).status, 403);
  auto rebound = server.Auth();
  rebound["Host"] = std::string("evil.example:").append(std::to_string(server.port()));
  EXPECT_EQ(Http(server.port(), "POST", target, rebound, body).status, 403);
  EXPECT_EQ(Http(server.port(), "POST", target, server.Auth(), "{\"version\": \"2\"}").status, 400);
  EXPECT_THROW(registry_->Resolve("rank@production"), UserError);  // nothing moved so far

  const HttpResult moved = Http(server.port(), "POST", target, server.Auth(), body);
  ASSERT_EQ(moved.status, 200) << moved.body;
  EXPECT_EQ(registry_->Resolve("rank@production").version, 2);
  EXPECT_EQ(Http(server.port(), "POST", target, server.Auth(), body).status, 409);
}

TEST_F(ServeTest, OfConcurrentPromotionsExactlyOneWins) {
  const Server server(RegistryDir());
  std::atomic<int> won{0}, lost{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      const HttpResult result =
          Http(server.port(), "POST", "/api/adapters/rank/aliases/staging", server.Auth(),
               std::string("{\"version\": ")
                   .append(std::to_string(1 + i % 3))
                   .append(", \"expect_version\": 0}"));
      (result.status == 200 ? won : lost) += result.status == 200 || result.status == 409;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(lost.load(), 7);
  EXPECT_EQ(registry_->History("rank").size(), 1u);
}

TEST_F(ServeTest, PathTraversalAndOversizedBodiesAreRefusedAndTheServerGoesOn) {
  const Server server(RegistryDir());
  for (const char* target :
       {"/api/adapters/%2e%2e/versions/1", "/api/adapters/..%2f..%2fetc/versions/1",
        "/api/adapters/%252e%252e/versions/1", "/api/adapters/a%5cb/versions/1",
        "/api/adapters/a%00b/versions/1",
        "/api/adapters/rank/versions/1/files/..%2f..%2fdb%2fCURRENT",
        "/api/adapters/rank/versions/1/files/%2e%2e/%2e%2e/db/CURRENT",
        "/api/adapters/rank/versions/1/files/%2fetc%2fpasswd", "/api/runs/..%2f..",
        "/../../etc/passwd", "/api/adapters/rank/versions/1%00/files/x"}) {
    const HttpResult result = Http(server.port(), "GET", target);
    // Refused, or (a NUL ends CivetWeb's decoded path) the API resource before the NUL.
    EXPECT_TRUE(result.status == 400 || result.status == 404 ||
                (result.status == 200 && result.body.starts_with("{")))
        << target << " " << result.status;
    EXPECT_EQ(result.body.find("MANIFEST"), std::string::npos) << target;
    EXPECT_EQ(result.body.find("root:"), std::string::npos) << target;
  }
  // Without a token a body is refused past 64 KiB, before it is read; with one past 16 MiB.
  EXPECT_EQ(Http(server.port(), "POST", "/api/adapters/rank/aliases/production", {},
                 std::string(100 * 1024, 'x'))
                .status,
            413);
  EXPECT_EQ(Http(server.port(), "POST", "/api/adapters/rank/aliases/production", server.Auth(),
                 std::string((16 << 20) + 1, 'x'))
                .status,
            413);
  EXPECT_EQ(Http(server.port(), "GET", "/api/health").status, 200);
}

TEST_F(ServeTest, ADownloadCarriesItsSha256AndHonoursRange) {
  const Server server(RegistryDir());
  const VersionRecord record = registry_->Resolve("rank:1");
  const ManifestEntry& weights = record.files[1];
  ASSERT_EQ(weights.path, "adapter_model.safetensors");
  const std::string target = "/api/adapters/rank/versions/1/files/adapter_model.safetensors";
  HttpResult whole = Http(server.port(), "GET", target);
  ASSERT_EQ(whole.status, 200);
  EXPECT_EQ(whole.headers["x-content-sha256"], weights.digest);
  EXPECT_EQ(Sha256Hex(whole.body), weights.digest);
  const HttpResult part = Http(server.port(), "GET", target, {{"Range", "bytes=2-5"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, whole.body.substr(2, 4));
}

// The UI in Debian's chromium (playwright-core): it lists and sorts the versions, shows what a
// model or a person wrote as text (a config and a metric name holding markup), highlights the
// differing key between two versions, and promotes with the token (then visible in the registry).
TEST_F(ServeTest, TheUiListsComparesAndPromotesInARealBrowser) {
  VersionRecord hostile = testing::SampleRecord(16, 0.7);
  hostile.config_toml =
      "name = \"<script>window.__xss=1</script>\"\nnote = '\"><img src=x "
      "onerror=window.__xss=1>'\n";
  hostile.scores["<img src=x onerror=window.__xss=1>"] = 0.5;
  registry_->Register("rank", hostile, testing::MakeArtifact(dir_.path() / "a4", "weights 4"));
  const Server server(RegistryDir());
  // Another client writes to the server all along: runs and their metrics, which invalidate the
  // server's view every few seconds.
  testing::ChildProcess busy({TUNE_REGISTRY_TEST_WRITER, "remote-runs", server.url()},
                             {{"TUNE_TOKEN", server.token()}});
  ASSERT_EQ(busy.ReadLines(60000, 1).size(), 1u) << "the other client recorded nothing";
  const fs::path shots = dir_.path() / "shots";
  fs::create_directories(shots);
  const auto run = testing::RunCommand({TUNE_NODE, TUNE_SOURCE_DIR "/tests/tools/js/browser.mjs",
                                        server.origin(), server.token(), shots.string()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json seen = json::parse(run.out);
  ASSERT_FALSE(seen.contains("error")) << seen.dump(2);
  EXPECT_EQ(seen["listed"].size(), 4u) << seen.dump(2);
  EXPECT_EQ(seen["sorted"][0], "rank:1") << seen.dump(2);
  EXPECT_EQ(seen["dialogs"].size(), 0u);
  EXPECT_FALSE(seen["xss"].get<bool>());
  EXPECT_EQ(seen["injected_nodes"], 0);
  EXPECT_NE(seen["config_text"].get<std::string>().find("<script>window.__xss=1</script>"),
            std::string::npos);
  const std::vector<std::string> headers = seen["headers"];
  EXPECT_NE(std::find(headers.begin(), headers.end(), "<img src=x onerror=window.__xss=1>"),
            headers.end())
      << seen["headers"].dump();
  EXPECT_EQ(seen["diff_headers"], json({"key", "rank:1", "rank:2", "rank:3"}));
  const std::vector<std::string> changed = seen["changed_keys"];
  EXPECT_NE(std::find(changed.begin(), changed.end(), "adapter.rank"), changed.end())
      << seen["changed_keys"].dump();
  const std::vector<std::string> outputs = seen["output_cells"];
  EXPECT_NE(std::find(outputs.begin(), outputs.end(), "<img src=x onerror=window.__xss=1>"),
            outputs.end())
      << seen["output_cells"].dump();
  EXPECT_NE(std::find(outputs.begin(), outputs.end(), "5"), outputs.end())  // the base model's
      << seen["output_cells"].dump();
  const std::vector<std::string> output_headers = seen["output_headers"];
  EXPECT_EQ(output_headers, std::vector<std::string>({"prompt", "reference", "base model", "rank:1",
                                                      "rank:2", "rank:3"}));
  EXPECT_EQ(seen["injected_nodes_compare"], 0);
  EXPECT_EQ(seen["promote_message"], "production -> rank:2");
  EXPECT_EQ(registry_->Resolve("rank@production").version, 2);
  EXPECT_TRUE(fs::exists(shots / "compare.png"));
  EXPECT_FALSE(busy.ReadLines(5000, 1).empty()) << "the other client stopped writing";
  EXPECT_FALSE(busy.Exited());
}

// Blind review and a gated promotion in a real browser: two raters judge every pair (one by
// keyboard, one by buttons) without seeing who wrote what, each pair's sides in random order; the
// results rank the better version first; a promotion the policy blocks says which condition fails
// and by how much, and goes through once the judgements are in and an approver approves.
TEST_F(ServeTest, TwoRatersJudgeBlindPairsAndThePolicyGatesThePromotionInARealBrowser) {
  registry_->MoveAlias("rank", "production", 1);
  std::string prompts;
  for (int i = 0; i < 10; ++i)
    prompts += json{{"prompt", "question " + std::to_string(i)}}.dump() + "\n";
  DatasetRecord set;
  set.sha256 = "prompts";
  set.rows = 10;
  set.source = "prompts.jsonl";
  registry_->RegisterDataset("qa", set, dir_.Write("rows", "rows\n"),
                             dir_.Write("prompts", prompts));
  registry_->CreateReview("qa", "qa");
  for (const auto& [contestant, quality] :
       {std::pair{"rank:1", "bad"}, std::pair{"rank:2", "good"}}) {
    std::string outputs;
    for (int i = 0; i < 10; ++i) {
      outputs +=
          json{{"prompt", i}, {"output", std::string(quality) + " answer " + std::to_string(i)}}
              .dump() +
          "\n";
    }
    registry_->AddReviewOutputs("qa", contestant,
                                dir_.Write(std::string("outputs-") + quality, outputs), "greedy");
  }
  for (const AliasPolicy& policy :
       ParsePolicies("[policy.production]\nrequire = [\"human.win_rate_vs_current >= 0.55\", "
                     "\"human.judgements >= 12\"]\napprovers = 1\n",
                     "policy.toml", "rank")) {
    registry_->SetPolicy(policy);
  }
  const std::string alice = registry_->AddToken("alice", Role::kPromote);
  const std::string bob = registry_->AddToken("bob", Role::kPromote);
  const Server server(RegistryDir());
  const fs::path shots = dir_.path() / "shots";
  fs::create_directories(shots);
  const auto run = testing::RunCommand({TUNE_NODE, TUNE_SOURCE_DIR "/tests/tools/js/review.mjs",
                                        server.origin(), alice, bob, shots.string()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json seen = json::parse(run.out);
  ASSERT_FALSE(seen.contains("error")) << seen.dump(2);
  EXPECT_EQ(seen["alice_judged"], 10);
  EXPECT_EQ(seen["bob_judged"], 10);
  EXPECT_EQ(seen["names_seen"], 0) << seen.dump(2);
  // Random per pair: 20 pairs on one side has probability 2^-19.
  EXPECT_GT(seen["good_on_left"].get<int>(), 0);
  EXPECT_GT(seen["good_on_right"].get<int>(), 0);
  EXPECT_NE(seen["promote_refused"].get<std::string>().find(
                "cannot promote rank:2 to production: its policy (policy.toml) is not met: "
                "human.judgements >= 12: 10, 2 short (needs >= 12)"),
            std::string::npos)
      << seen.dump(2);
  EXPECT_EQ(seen["override_refused"], "token 'alice' has the role promote; this needs admin");
  EXPECT_EQ(seen["results_order"], json({"rank:2", "rank:1"}));
  EXPECT_EQ(seen["results_summary"], "20 judgements by 2 raters; open");
  // Both raters chose alike every time: no variation, so no agreement measure.
  EXPECT_EQ(seen["agreement"],
            "agreement between raters: not measured yet (no pair judged by two raters with any "
            "variation)");
  // The version's own page shows its rating in the review.
  ASSERT_EQ(seen["version_judgements"].size(), 5u) << seen.dump(2);
  EXPECT_EQ(seen["version_judgements"][0], "qa");
  EXPECT_EQ(seen["version_judgements"][3], "20");
  EXPECT_EQ(seen["version_judgements"][4], "100% vs rank:1");
  EXPECT_EQ(seen["promote_asked"], "request 1 waits for 1 approver(s) with the promote role");
  EXPECT_EQ(seen["approved"], "production -> rank:2");
  EXPECT_EQ(registry_->Resolve("rank@production").version, 2);
  EXPECT_EQ(registry_->History("rank").back().reason, "request 1 by alice, approved by bob");
  EXPECT_EQ(seen["dialogs"].size(), 0u);
  EXPECT_TRUE(fs::exists(shots / "results.png"));
}

// Bytes leave the registry only as their SHA-256 says: a corrupted object goes out short of its
// Content-Length (the connection is cut before its last bytes), a truncated one or a range of a
// corrupted one not at all (500), damaged evaluation outputs are an error rather than fewer
// lines, and the server logs each.
TEST_F(ServeTest, ADamagedObjectIsNeverSentAsIfWhole) {
  const Server server(RegistryDir());
  const VersionRecord record = registry_->Resolve("rank:1");
  const ManifestEntry& weights = record.files[1];
  const fs::path object = registry_->ObjectPath(weights.digest);
  fs::permissions(object, fs::perms::owner_write, fs::perm_options::add);
  std::string bytes = testing::ReadText(object);
  bytes[bytes.size() / 2] ^= 0x20;
  std::ofstream(object, std::ios::binary | std::ios::trunc) << bytes;
  const std::string target = "/api/adapters/rank/versions/1/files/adapter_model.safetensors";

  HttpResult whole = Http(server.port(), "GET", target);
  EXPECT_EQ(whole.status, 200);
  EXPECT_LT(whole.body.size(), bytes.size()) << "the corrupted bytes went out whole";
  EXPECT_EQ(whole.headers["content-length"], std::to_string(bytes.size()));
  EXPECT_EQ(Http(server.port(), "GET", target, {{"Range", "bytes=0-3"}}).status, 500);

  std::ofstream(object, std::ios::binary | std::ios::trunc) << bytes.substr(0, 3);
  const HttpResult cut = Http(server.port(), "GET", target);
  EXPECT_EQ(cut.status, 500);
  EXPECT_NE(json::parse(cut.body)["error"].get<std::string>().find(
                "has 3 bytes, the record says " + std::to_string(weights.size_bytes)),
            std::string::npos)
      << cut.body;

  const fs::path samples = registry_->ObjectPath(record.eval_samples->digest);
  fs::permissions(samples, fs::perms::owner_write, fs::perm_options::add);
  std::string lines = testing::ReadText(samples);
  lines[5] ^= 0x01;
  std::ofstream(samples, std::ios::binary | std::ios::trunc) << lines;
  EXPECT_EQ(Http(server.port(), "GET", "/api/adapters/rank/versions/1/eval").status, 500);

  const std::string log = server.Log();
  EXPECT_NE(log.find("error: object sha256:" + weights.digest +
                     " (rank:1 adapter_model.safetensors) is corrupted"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("rank:1 eval_samples.jsonl"), std::string::npos) << log;
  EXPECT_EQ(Http(server.port(), "GET", "/api/health").status, 200);
}

TEST_F(ServeTest, ARangeOutsideTheFileIs416AndTwoContentLengthsAreRefused) {
  const Server server(RegistryDir());
  const std::string target = "/api/adapters/rank/versions/1/files/adapter_model.safetensors";
  const int64_t size = registry_->Resolve("rank:1").files[1].size_bytes;
  for (const std::string& range :
       {"bytes=" + std::to_string(size) + "-", std::string("bytes=5-2"), std::string("bytes=-0")}) {
    HttpResult result = Http(server.port(), "GET", target, {{"Range", range}});
    EXPECT_EQ(result.status, 416) << range;
    EXPECT_EQ(result.headers["content-range"], "bytes */" + std::to_string(size)) << range;
  }
  const HttpResult tail = Http(server.port(), "GET", target, {{"Range", "bytes=-3"}});
  EXPECT_EQ(tail.status, 206);
  EXPECT_EQ(tail.body.size(), 3u);
  // The raw request carries both lengths; Http adds none for a GET without a body.
  const HttpResult smuggled =
      Http(server.port(), "GET", "/api/health", {{"Content-Length", "0"}, {"Content-length", "5"}});
  EXPECT_EQ(smuggled.status, 400);
}

// A page of another site whose name was made to resolve to 127.0.0.1 (DNS rebinding) sends its
// own name as Host: reads are refused too, not only promotions.
TEST_F(ServeTest, EveryRequestMustNameThisServerInItsHost) {
  const Server server(RegistryDir(), {"--allow-host", "registry.example"});
  const std::string port = std::to_string(server.port());
  for (const std::string& path :
       {std::string("/api/versions"), std::string("/"),
        std::string("/api/adapters/rank/versions/1/files/adapter_model.safetensors")}) {
    EXPECT_EQ(Http(server.port(), "GET", path, {{"Host", "evil.example:" + port}}).status, 403)
        << path;
    EXPECT_EQ(Http(server.port(), "GET", path, {{"Host", "127.0.0.1"}}).status, 403) << path;
  }
  EXPECT_EQ(Http(server.port(), "GET", "/api/health", {{"Host", "localhost:" + port}}).status, 200);
  EXPECT_EQ(Http(server.port(), "GET", "/api/health", {{"Host", "LOCALHOST.:" + port}}).status,
            200);
  EXPECT_EQ(
      Http(server.port(), "GET", "/api/health", {{"Host", "registry.example:" + port}}).status,
      200);
}

TEST_F(ServeTest, NumbersOutsideTheirRangeAreRefused) {
  const Server server(RegistryDir());
  EXPECT_EQ(Http(server.port(), "GET", "/api/versions?limit=-1").status, 400);
  EXPECT_EQ(Http(server.port(), "GET", "/api/versions?offset=-5").status, 400);
  EXPECT_EQ(Http(server.port(), "GET", "/api/versions?limit=%2B5").status, 400);
  const std::string target = "/api/adapters/rank/aliases/production";
  for (const std::string& body :
       {std::string(R"({"version": 18446744073709551615})"), std::string(R"({"version": -1})"),
        std::string(R"({"version": 0})"),
        std::string(R"({"version": 1, "expect_version": 18446744073709551615})"),
        std::string(R"({"version": 1, "expect_version": -1})")}) {
    EXPECT_EQ(Http(server.port(), "POST", target, server.Auth(), body).status, 400) << body;
  }
  EXPECT_TRUE(registry_->History("rank").empty());
}

TEST_F(ServeTest, AnAddressThatIsNotIPv4IsRefusedBeforeBinding) {
  const auto result = testing::RunTune(
      {"serve", "--registry", RegistryDir().string(), "--host", "127.0.0.257", "--port", "0"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err,
            "error: --host 127.0.0.257 is not an IPv4 address; use 127.0.0.1 (this machine only), "
            "an address of one of its interfaces, or 0.0.0.0 (all of them)\n");
}

// CivetWeb answers what it cannot parse itself; that answer carries the headers every other does.
TEST_F(ServeTest, TheServersOwnErrorPagesCarryTheSecurityHeaders) {
  const Server server(RegistryDir());
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(server.port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  const std::string garbage = "NOT A REQUEST\r\n\r\n";
  ASSERT_EQ(::send(fd, garbage.data(), garbage.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(garbage.size()));
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0;) response.append(buffer, n);
  ::close(fd);
  EXPECT_TRUE(response.starts_with("HTTP/1.1 400")) << response;
  EXPECT_NE(response.find("X-Content-Type-Options: nosniff"), std::string::npos) << response;
  EXPECT_NE(response.find("Content-Security-Policy: default-src 'none'"), std::string::npos);
}

// Connections that send nothing, or announce a body they never send, hold no worker others need:
// with 100 idle connections open (the old server had 50 workers, each held 30 seconds), a
// request is still answered, and a 10^12-byte body is refused without waiting for it. The
// bounds below are generous limits on a wait, not speeds: the server answers in milliseconds,
// and before the fix these waited 30 and 60 seconds.
TEST_F(ServeTest, IdleAndSlowClientsDoNotStopOthers) {
  const Server server(RegistryDir());
  const auto connect = [&] {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(server.port()));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    return fd;
  };
  // Everything the server sends until it closes, or what came within `seconds`.
  const auto read_until_closed = [](int fd, int seconds, bool& closed) {
    std::string response;
    closed = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd ready{fd, POLLIN, 0};
      if (::poll(&ready, 1, 200) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) {
        closed = true;
        break;
      }
      response.append(buffer, static_cast<size_t>(n));
    }
    return response;
  };
  std::vector<int> idle;
  for (int i = 0; i < 100; ++i) idle.push_back(connect());
  const int asking = connect();
  const std::string request =
      "GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server.port()) +
      "\r\nConnection: close\r\n\r\n";
  ::send(asking, request.data(), request.size(), MSG_NOSIGNAL);
  bool closed = false;
  EXPECT_TRUE(read_until_closed(asking, 8, closed).starts_with("HTTP/1.1 200"));
  ::close(asking);

  const int announcing = connect();
  const std::string huge =
      "POST /api/adapters/rank/aliases/production HTTP/1.1\r\nHost: 127.0.0.1:" +
      std::to_string(server.port()) + "\r\nContent-Length: 1000000000000\r\n\r\n";
  ::send(announcing, huge.data(), huge.size(), MSG_NOSIGNAL);
  const std::string refused = read_until_closed(announcing, 8, closed);
  EXPECT_TRUE(refused.starts_with("HTTP/1.1 413")) << refused;
  EXPECT_TRUE(closed) << "the server kept the connection waiting for the body";
  ::close(announcing);
  for (int fd : idle) ::close(fd);
}

}  // namespace
}  // namespace tune
