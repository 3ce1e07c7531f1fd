// One registry for a team: `tune serve` as the registry server and Registry::Open(URL) as its
// client, over real sockets on the loopback address. The same calls give the same answers as a
// folder; tokens and their roles decide who may do what; objects travel by digest and uploads
// resume; TLS with a certificate the test makes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>

#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "registry/http_client.h"
#include "registry/local_registry.h"
#include "registry/registry_test_util.h"
#include "registry/wire.h"
#include "support/test_support.h"
#include "util/sha256.h"
#include "web/serve_process.h"
#include "web/server.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Mode = Registry::OpenMode;
using registry_internal::HttpAnswer;
using registry_internal::HttpClient;
using registry_internal::HttpClientOptions;
using testing::MakeArtifact;
using testing::SampleRecord;
using testing::TempDir;

constexpr const char* kOwner = "owner-secret";

// tune serve in this process on a free port, on `registry`.
std::unique_ptr<WebServer> Serve(const fs::path& registry, bool open_reads = false,
                                 const fs::path& cert = {}, const fs::path& key = {}) {
  ServeOptions options;
  options.registry = registry;
  options.port = 0;
  options.token = kOwner;
  options.open_reads = open_reads;
  options.tls_cert = cert;
  options.tls_key = key;
  return WebServer::Start(options);
}

std::unique_ptr<Registry> Client(const std::string& url, const std::string& token = kOwner,
                                 const std::string& ca_file = "") {
  return Registry::Open(url, Mode::kReadWrite, Registry::OpenOptions{{}, {token, ca_file}});
}

HttpClient Http(const std::string& url, const std::string& token) {
  HttpClientOptions options;
  options.base_url = url;
  options.token = token;
  return HttpClient(options);
}

int64_t BytesReceived(const std::string& url) {
  const HttpAnswer health = Http(url, kOwner).Get("/api/health");
  return json::parse(health.body).at("object_bytes_received").get<int64_t>();
}

class RegistryServer : public ::testing::Test {
 protected:
  void SetUp() override {
    LocalRegistry::Open(dir_.path() / "served", Mode::kCreate);
    server_ = Serve(dir_.path() / "served");
  }
  fs::path Artifact(const std::string& weights) {
    return MakeArtifact(dir_.path() / ("artifact-" + std::to_string(++artifacts_)), weights);
  }

  TempDir dir_;
  std::unique_ptr<WebServer> server_;
  int artifacts_ = 0;
};

// One scenario against a registry, written down as what a person would see of each answer
// (without what differs between any two registries: times, run ids, who).
// `work` is a folder of its own for the files the scenario writes; `folder` is the registry's
// folder (the server's, for a URL), which errors name.
std::vector<std::string> Scenario(Registry& registry, const fs::path& work,
                                  const fs::path& folder) {
  std::vector<std::string> seen;
  const auto note = [&](const std::string& line) { seen.push_back(line); };
  const auto refused = [&](const std::function<void()>& call) {
    try {
      call();
      note("not refused");
    } catch (const UserError& e) {
      std::string text = e.what();
      // A folder names itself by its path, a server by its URL: the rest is the same.
      for (const std::string& place : {work.string(), folder.string(), registry.location()}) {
        for (size_t at; (at = text.find(place)) != std::string::npos;)
          text.replace(at, place.size(), "REGISTRY");
      }
      note("refused: " + text);
    }
  };
  const fs::path samples = work / "samples.jsonl";
  std::ofstream(samples) << R"({"prompt": "p", "prediction": "<b>x</b>"})"
                         << "\n";
  for (int i = 1; i <= 3; ++i) {
    VersionRecord record = SampleRecord(2 << i, 0.1 * i);
    record.run_id = "";
    const int64_t version = registry.Register(
        "rank", record,
        MakeArtifact(work / ("a" + std::to_string(i)), "weights " + std::to_string(i)), samples);
    note("registered rank:" + std::to_string(version));
  }
  note("names " + json(registry.Names()).dump());
  note("latest " + std::to_string(registry.Resolve("rank").version));
  const VersionRecord second = registry.Get("rank", 2);
  note("rank:2 digest " + second.artifact_digest);
  const std::vector<VersionRecord> sorted =
      registry.List({"rank", "scores.exact_match > 0.15", "-scores.exact_match"});
  for (const VersionRecord& r : sorted) note("listed rank:" + std::to_string(r.version));
  const Registry::Page page = registry.ListPage({}, 1, 1);
  note("page of " + std::to_string(page.total) +
       ": rank:" + std::to_string(page.versions[0].version));
  note("was " + std::to_string(registry.MoveAlias("rank", "production", 2, 0)));
  refused([&] { registry.MoveAlias("rank", "production", 3, 0); });
  refused([&] { registry.MoveAlias("rank", "latest", 3); });
  note("aliases " + json(registry.Aliases("rank")).dump());
  for (const AliasMove& move : registry.History("rank")) {
    note("moved " + move.alias + " " + std::to_string(move.old_version) + " -> " +
         std::to_string(move.new_version) + (move.by.empty() ? " by nobody" : " by someone"));
  }
  refused([&] { registry.Resolve("rnak"); });
  refused([&] { registry.Resolve("rank:9"); });
  refused([&] { registry.Resolve("rank@staging"); });
  const VersionRecord fetched = registry.Fetch("rank@production", work / "fetched");
  note("fetched rank:" + std::to_string(fetched.version) + " " +
       testing::ReadText(work / "fetched" / "adapter_model.safetensors"));
  refused([&] { registry.Fetch("rank:1", work / "fetched"); });
  note("eval " + registry.ReadObject(*second.eval_samples, "rank:2 eval"));

  std::ofstream(work / "rows.txt") << std::string(64, 'a') << " " << std::string(64, 'b') << " 1\n";
  DatasetRecord dataset;
  dataset.sha256 = std::string(64, 'c');
  dataset.rows = 1;
  dataset.source = "/data/task.jsonl";
  note("dataset v" + std::to_string(registry.RegisterDataset("task", dataset, work / "rows.txt")));
  note("dataset again v" +
       std::to_string(registry.RegisterDataset("task", dataset, work / "rows.txt")));
  note("dataset rows " + std::to_string(registry.GetDataset("task").rows) + " of " +
       std::to_string(registry.ListDatasets().size()) + " versions");

  const std::string run = registry.CreateRun({"rank", "s1", 2, "[train]\n"});
  registry.LogMetrics(run, 1, {{"loss", 2.0}});
  registry.LogMetrics(run, 2, {{"loss", 1.0}});
  registry.LogMetrics(run, 2, {{"eval_loss", 1.5}});
  // A diverged run's numbers, which JSON has no numbers for, are kept as they were.
  registry.LogMetrics(run, 3,
                      {{"loss", std::numeric_limits<double>::infinity()},
                       {"grad_norm", -std::numeric_limits<double>::infinity()},
                       {"eval_loss", std::numeric_limits<double>::quiet_NaN()}});
  registry.FinishRun(run, RunStatus::kFinished);
  const RunRecord recorded = registry.GetRun(run);
  note("run " + recorded.info.name + " " + std::string(RunStatusName(recorded.status)) + " sweep " +
       *recorded.info.sweep + " trial " + std::to_string(*recorded.info.trial));
  for (const MetricsAtStep& at : registry.GetRunMetrics(run)) {
    note("step " + std::to_string(at.step) + " " + wire::MetricValuesToJson(at.values).dump());
  }
  note(std::to_string(registry.ListRuns().size()) + " runs");
  refused([&] { registry.LogMetrics(run, -1, {{"loss", 1.0}}); });

  const VerifyReport report = registry.Verify();
  note("verify: " + std::to_string(report.versions_checked) + " versions, " +
       std::to_string(report.problems.size()) + " problems");
  note("gc removed " + std::to_string(registry.Gc(std::chrono::seconds(0)).objects_removed));
  const std::string token = registry.AddToken("alice", Role::kPromote);
  note("token " + token.substr(0, 6) + " of " + std::to_string(token.size()) + " characters");
  refused([&] { registry.AddToken("alice", Role::kRead); });
  registry.RevokeToken("alice");
  for (const TokenInfo& info : registry.ListTokens()) {
    note("token " + info.name + " " + std::string(RoleName(info.role)) +
         (info.revoked_ms != 0 ? " revoked" : ""));
  }
  return seen;
}

// The property the issue asks for: every command works against a server with the same output as
// against a folder. One scenario, run against each, must read the same.
TEST_F(RegistryServer, EveryCallAnswersAsAFolderDoes) {
  const fs::path folder_work = dir_.path() / "folder-work";
  const fs::path server_work = dir_.path() / "server-work";
  fs::create_directories(folder_work);
  fs::create_directories(server_work);
  const auto local = LocalRegistry::Open(dir_.path() / "folder", Mode::kCreate);
  const std::vector<std::string> from_folder =
      Scenario(*local, folder_work, dir_.path() / "folder");
  const auto remote = Client(server_->url());
  const std::vector<std::string> from_server =
      Scenario(*remote, server_work, dir_.path() / "served");
  EXPECT_EQ(from_server, from_folder);
  EXPECT_GE(from_server.size(), 30u);
  EXPECT_NE(std::find(from_server.begin(), from_server.end(),
                      R"(step 3 {"eval_loss":"nan","grad_norm":"-inf","loss":"inf"})"),
            from_server.end());
}

TEST_F(RegistryServer, EveryChangeRecordsTheTokenThatMadeIt) {
  const auto owner = Client(server_->url());
  const std::string bob_token = owner->AddToken("bob", Role::kPromote);
  const auto bob = Client(server_->url(), bob_token);
  VersionRecord record = SampleRecord();
  const int64_t version = bob->Register("rank", record, Artifact("w"));
  bob->MoveAlias("rank", "production", version);
  const std::string run = bob->CreateRun({"rank", std::nullopt, std::nullopt, ""});
  EXPECT_EQ(owner->Get("rank", version).registered_by, "bob");
  EXPECT_EQ(owner->History("rank").back().by, "bob");
  EXPECT_EQ(owner->GetRun(run).created_by, "bob");
  EXPECT_EQ(owner->ListTokens()[0].created_by, "owner");
}

// Objects travel by digest: the second registration of the same bytes (another run) sends none,
// and an upload cut off (the first chunk arrived, then nothing) goes on from where it stopped.
TEST_F(RegistryServer, OnlyTheBytesTheServerLacksAreSentAndAnUploadResumes) {
  const auto client = Client(server_->url());
  std::string weights(wire::kChunkBytes + 12345, '\0');
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<char>(i * 7919 % 251);
  const fs::path artifact = Artifact(weights);

  // A client that sent the first chunk and died.
  const std::string digest = Sha256Hex(weights);
  const std::string chunk = weights.substr(0, wire::kChunkBytes);
  const HttpAnswer first =
      Http(server_->url(), kOwner)
          .Put("/api/objects/" + digest + "?size=" + std::to_string(weights.size()) + "&offset=0",
               chunk, {{wire::kChunkShaHeader, Sha256Hex(chunk)}});
  ASSERT_EQ(first.status, 200) << first.body;
  const int64_t before = BytesReceived(server_->url());
  EXPECT_EQ(before, static_cast<int64_t>(wire::kChunkBytes));

  VersionRecord record = SampleRecord();
  record.run_id = "aaaaaaaaaaaaaaaa";
  const int64_t version = client->Register("rank", record, artifact);
  // The rest of the weights, and the config, which it lacked too.
  const int64_t config_bytes =
      static_cast<int64_t>(fs::file_size(artifact / "adapter_config.json"));
  EXPECT_EQ(BytesReceived(server_->url()) - before, 12345 + config_bytes);

  record.run_id = "bbbbbbbbbbbbbbbb";
  const int64_t after_first = BytesReceived(server_->url());
  EXPECT_EQ(client->Register("rank", record, artifact), version + 1);
  EXPECT_EQ(BytesReceived(server_->url()), after_first) << "object bytes were sent again";
  // A retried registration of one run (it did not hear the answer) makes no second version.
  EXPECT_EQ(client->Register("rank", record, artifact), version + 1);
  EXPECT_EQ(client->Resolve("rank").version, version + 1);
  client->Fetch("rank:" + std::to_string(version), dir_.path() / "out");
  EXPECT_EQ(testing::ReadText(dir_.path() / "out" / "adapter_model.safetensors"), weights);
  EXPECT_TRUE(client->Verify().problems.empty());
}

// A chunk damaged on the way is found when the whole does not hash to its name, and the upload
// goes back to it; bytes that hash as each chunk said but not to the object's name (the file
// changed while it was sent) are dropped; neither is ever stored.
TEST_F(RegistryServer, AnObjectThatDoesNotHashAsItSaysIsNeverStored) {
  const HttpClient http = Http(server_->url(), kOwner);
  const std::string bytes = "some weights";
  const std::string digest = Sha256Hex(bytes);
  const std::string target = "/api/objects/" + digest + "?size=" + std::to_string(bytes.size());
  const auto put = [&](int64_t offset, const std::string& chunk, const std::string& chunk_sha) {
    return http.Put(target + "&offset=" + std::to_string(offset), chunk,
                    {{wire::kChunkShaHeader, chunk_sha}});
  };
  ASSERT_EQ(put(0, "Some ", Sha256Hex("some ")).status, 200);  // a byte flipped on the way
  const HttpAnswer damaged = put(5, "weights", Sha256Hex("weights"));
  EXPECT_EQ(damaged.status, 409) << damaged.body;
  EXPECT_NE(damaged.body.find("the chunk at 0 does not hash to the SHA-256 sent with it"),
            std::string::npos)
      << damaged.body;
  EXPECT_EQ(json::parse(damaged.body)["received"], 0);
  ASSERT_EQ(put(0, "some ", Sha256Hex("some ")).status, 200);  // sent again from there
  ASSERT_EQ(put(5, "weights", Sha256Hex("weights")).status, 200);
  EXPECT_EQ(
      json::parse(http.Post("/api/objects/received",
                            wire::Dump({{"objects", {{{"digest", digest}, {"size_bytes", 12}}}}}))
                      .body)["received"][0],
      12);

  const std::string other = "other weights";
  const std::string other_target =
      "/api/objects/" + Sha256Hex("other weightz") + "?size=13&offset=0";
  const HttpAnswer changed =
      http.Put(other_target, other, {{wire::kChunkShaHeader, Sha256Hex(other)}});
  EXPECT_EQ(changed.status, 400);
  EXPECT_NE(changed.body.find("hash to sha256:" + Sha256Hex(other)), std::string::npos)
      << changed.body;
  EXPECT_EQ(http.Put(other_target, other, {}).status, 400) << "a chunk without its SHA-256";
  EXPECT_EQ(http.Put(other_target, other, {{wire::kChunkShaHeader, "abc"}}).status, 400);
  const HttpAnswer late = http.Put("/api/objects/" + Sha256Hex(other) + "?size=13&offset=5", "we",
                                   {{wire::kChunkShaHeader, Sha256Hex("we")}});
  EXPECT_EQ(late.status, 409);
  EXPECT_EQ(json::parse(late.body)["received"], 0);
  VersionRecord record = SampleRecord();
  record.files = {{"adapter_model.safetensors", Sha256Hex(other), 13}};
  const HttpAnswer unsent =
      http.Post("/api/adapters/rank/versions",
                wire::Dump({{"record", json::parse(VersionRecordToJson(record))}}));
  EXPECT_EQ(unsent.status, 400);
  EXPECT_NE(unsent.body.find("is not stored; send it first"), std::string::npos) << unsent.body;
  EXPECT_THROW(Client(server_->url())->Resolve("rank"), UserError);
}

// People's judgement against a registry, as a person would see each answer: `as(who)` is the
// registry as alice or bob (a token of the promote role each, on a server).
std::vector<std::string> ReviewScenario(Registry& registry, const fs::path& work,
                                        const std::function<Registry&(const std::string&)>& as) {
  std::vector<std::string> seen;
  const auto note = [&](const std::string& line) { seen.push_back(line); };
  const auto refused = [&](const std::function<void()>& call) {
    try {
      call();
      note("not refused");
    } catch (const UserError& e) {
      note("refused: " + std::string(e.what()));
    }
  };
  for (int i = 1; i <= 2; ++i) {
    VersionRecord record = SampleRecord(8, 0.9);
    record.run_id = "";
    registry.Register("rank", record,
                      MakeArtifact(work / ("a" + std::to_string(i)), "w" + std::to_string(i)));
  }
  registry.MoveAlias("rank", "production", 1);
  std::ofstream(work / "rows.txt") << "rows\n";
  std::ofstream(work / "prompts.jsonl") << "{\"prompt\": \"a?\"}\n{\"prompt\": \"b?\"}\n";
  DatasetRecord set;
  set.sha256 = "prompts";
  set.rows = 2;
  set.source = "prompts.jsonl";
  registry.RegisterDataset("qa", set, work / "rows.txt", work / "prompts.jsonl");
  registry.CreateReview("qa", "qa");
  for (const std::string contestant : {"rank:1", "rank:2", "base"}) {
    const fs::path file = work / ("outputs-" + contestant.substr(contestant.size() - 1));
    std::ofstream(file) << "{\"prompt\": 0, \"output\": \"" << contestant
                        << " A\"}\n{\"prompt\": 1, \"output\": \"" << contestant << " B\"}\n";
    registry.AddReviewOutputs("qa", contestant, file, "greedy");
  }
  note("review of " + std::to_string(registry.GetReview("qa").outputs.size()) + " contestants on " +
       std::to_string(registry.ListReviews().at(0).prompts) + " prompts");
  int64_t first = 0;
  for (const std::string who : {"alice", "bob"}) {
    while (const std::optional<BlindPair> pair = as(who).NextPair("qa")) {
      if (first == 0) first = pair->id;
      note(who + " is shown a pair (" + std::to_string(pair->remaining) + " left)");
      as(who).Judge("qa", pair->id,
                    pair->left.starts_with("rank:2")    ? Verdict::kLeft
                    : pair->right.starts_with("rank:2") ? Verdict::kRight
                                                        : Verdict::kTie);
    }
  }
  try {
    as("alice").Judge("qa", first, Verdict::kRight);
  } catch (const UserError& e) {
    // The verdict it names is the one the random first pair got.
    note(std::string(e.what()).substr(0, std::string(e.what()).find(" already")));
  }
  refused([&] { as("bob").Judge("qa", first, Verdict::kRight); });
  refused([&] { registry.Judgements("qa"); });
  const ReviewResults results = registry.Results("qa");
  note(std::to_string(results.judgements) + " judgements by " + std::to_string(results.raters) +
       " raters, alpha " + std::to_string(results.agreement.alpha.value_or(-9)));
  // The bootstrap draws resamples by the judgements' order, which the random pairs make differ
  // between the two runs: the intervals are compared by what they hold.
  for (const ContestantResult& c : results.contestants) {
    note(c.contestant + " " + std::to_string(std::lround(c.rating.rating)) +
         (c.rating.ci95_low <= c.rating.rating && c.rating.rating <= c.rating.ci95_high
              ? " inside its interval"
              : " outside its interval"));
  }
  for (const AliasPolicy& policy :
       ParsePolicies("[policy.production]\nrequire = [\"human.win_rate_vs_current >= 0.55\", "
                     "\"human.judgements >= 4\", \"exact_match >= 0.95\"]\napprovers = 1\n",
                     "policy.toml", "rank")) {
    registry.SetPolicy(policy);
  }
  refused([&] {
    registry.SetPolicy({"rank", "staging", {"rouge >= 1"}, 0, "p.toml", {3}, 0, ""});
  });
  note(std::to_string(registry.Policies("rank").size()) + " policy");
  refused([&] { registry.MoveAlias("rank", "production", 2); });
  try {
    as("alice").Promote("rank", "production", 2);
  } catch (const PolicyRefused& e) {
    note(std::string("refused: ") + e.what() + " (" + std::to_string(e.checks().size()) +
         " checks)");
  }
  for (const PolicyCheck& check : registry.CheckPolicy("rank", "production", 2)) {
    note(check.condition + (check.met ? " met: " : " not met: ") + check.detail);
  }
  registry.SetPolicy(ParsePolicies("[policy.production]\nrequire = [\"human.judgements >= 4\"]\n"
                                   "approvers = 1\n",
                                   "policy.toml", "rank")
                         .at(0));
  const PromotionRequest asked = as("alice").Promote("rank", "production", 2);
  note("request " + std::to_string(asked.id) + " " + asked.status + " by " + asked.requested_by);
  refused([&] { as("alice").Approve("rank", asked.id); });
  const PromotionRequest approved = as("bob").Approve("rank", asked.id);
  note("request " + approved.status + ", production at " +
       std::to_string(registry.Aliases("rank").at("production")));
  note("history: " + registry.History("rank").back().reason);
  note(std::to_string(registry.PromotionRequests("rank").size()) + " request");
  as("bob").CloseReview("qa");
  refused([&] { as("alice").NextPair("qa"); });
  note(std::to_string(registry.Judgements("qa").size()) + " pairs shown");
  registry.RemovePolicy("rank", "production");
  note(std::to_string(registry.Policies("rank").size()) + " policies");
  return seen;
}

TEST_F(RegistryServer, ReviewsAndPromotionsAnswerAsAFolderDoes) {
  const fs::path folder_work = dir_.path() / "folder-work";
  const fs::path server_work = dir_.path() / "server-work";
  fs::create_directories(folder_work);
  fs::create_directories(server_work);
  const auto local = LocalRegistry::Open(dir_.path() / "folder", Mode::kCreate);
  std::map<std::string, std::unique_ptr<Registry>> local_people;
  const std::vector<std::string> from_folder =
      ReviewScenario(*local, folder_work, [&](const std::string& who) -> Registry& {
        if (!local_people.count(who)) local_people[who] = local->Acting(who);
        return *local_people[who];
      });
  const auto remote = Client(server_->url());
  std::map<std::string, std::unique_ptr<Registry>> remote_people;
  for (const std::string who : {"alice", "bob"}) {
    remote_people[who] = Client(server_->url(), remote->AddToken(who, Role::kPromote));
  }
  const std::vector<std::string> from_server =
      ReviewScenario(*remote, server_work,
                     [&](const std::string& who) -> Registry& { return *remote_people.at(who); });
  EXPECT_EQ(from_server, from_folder);
  EXPECT_GE(from_server.size(), 25u);
}

TEST_F(RegistryServer, OverridingAPolicyOverHttpNeedsAnAdminAndRatingANamedToken) {
  const auto owner = Client(server_->url());
  owner->Register("rank", SampleRecord(), Artifact("w"));
  owner->SetPolicy({"rank", "production", {"exact_match >= 0.99"}, 0, "policy.toml", {2}, 0, ""});
  const auto promoter = Client(server_->url(), owner->AddToken("pat", Role::kPromote));
  EXPECT_THROW(promoter->MoveAlias("rank", "production", 1, std::nullopt, "because"),
               RegistryDenied);
  EXPECT_THROW(promoter->MoveAlias("rank", "production", 1), PolicyRefused);
  owner->MoveAlias("rank", "production", 1, std::nullopt, "because");
  EXPECT_EQ(promoter->History("rank").back().reason, "because");
  EXPECT_TRUE(promoter->History("rank").back().overridden);
  // Reads opened to anyone do not make anyone a rater.
  const auto open = Serve(dir_.path() / "served", /*open_reads=*/true);
  EXPECT_EQ(Http(open->url(), "").Post("/api/reviews/qa/next", "{}").status, 401);
}

// Who wrote what stays hidden from raters until the review is closed: the review they read does
// not say where each contestant's outputs are stored (whose bytes they could fetch and match),
// and they see no results or policy checks (whose ratings move with their own judgements).
TEST_F(RegistryServer, ARaterIsNotToldWhereAnOpenReviewsOutputsAre) {
  const auto owner = Client(server_->url());
  const fs::path work = dir_.path() / "work";
  fs::create_directories(work);
  std::ofstream(work / "rows.txt") << "rows\n";
  std::ofstream(work / "prompts.jsonl") << "{\"prompt\": \"a?\"}\n";
  std::ofstream(work / "outputs.jsonl") << "{\"prompt\": 0, \"output\": \"yes\"}\n";
  DatasetRecord set;
  set.sha256 = "prompts";
  set.rows = 1;
  set.source = "prompts.jsonl";
  owner->RegisterDataset("qa", set, work / "rows.txt", work / "prompts.jsonl");
  owner->CreateReview("qa", "qa");
  owner->AddReviewOutputs("qa", "base", work / "outputs.jsonl", "greedy");
  const auto rater = Client(server_->url(), owner->AddToken("rita", Role::kRead));
  EXPECT_EQ(rater->GetReview("qa").outputs.at(0).object.digest, "");
  EXPECT_EQ(rater->ListReviews().at(0).outputs.at(0).object.digest, "");
  EXPECT_EQ(owner->GetReview("qa").outputs.at(0).object.digest.size(), 64u);
  EXPECT_THROW(rater->Results("qa"), RegistryDenied);
  EXPECT_EQ(owner->Results("qa").contestants.size(), 1u);
  EXPECT_THROW(rater->CheckPolicy("rank", "production", 1), RegistryDenied);
  owner->CloseReview("qa");
  EXPECT_EQ(rater->GetReview("qa").outputs.at(0).object.digest.size(), 64u);
  EXPECT_EQ(rater->Results("qa").contestants.size(), 1u);
}

// Hostile or mistaken requests to the review and policy routes: one line each, saying what the
// body should be, or naming the policy's file, line and key.
TEST_F(RegistryServer, MalformedReviewAndPolicyRequestsAreRefusedWithOneLine) {
  const auto owner = Client(server_->url());
  owner->Register("rank", SampleRecord(), Artifact("w"));
  const HttpClient http = Http(server_->url(), kOwner);
  const auto error = [&](const std::string& target, const std::string& body) {
    const HttpAnswer answer = http.Post(target, body);
    EXPECT_EQ(answer.status, 400) << target << " " << body << ": " << answer.body;
    return json::parse(answer.body).value("error", "");
  };
  EXPECT_EQ(error("/api/reviews/qa/judgements", R"({"pair": "one", "verdict": "left"})"),
            "the body is JSON {\"pair\": ID, \"verdict\": \"left\" | \"right\" | \"tie\" | "
            "\"both_bad\", \"reason\": TEXT}");
  EXPECT_EQ(error("/api/reviews/qa/judgements", R"({"pair": 1, "verdict": "maybe"})"),
            "the body is JSON {\"pair\": ID, \"verdict\": \"left\" | \"right\" | \"tie\" | "
            "\"both_bad\", \"reason\": TEXT}");
  EXPECT_NE(error("/api/reviews/qa/next", "{}").find("no review 'qa'"), std::string::npos);
  EXPECT_NE(error("/api/reviews/Bad%20Name/next", "{}").find("invalid review name"),
            std::string::npos);
  EXPECT_EQ(error("/api/reviews", "[]"), "the body is JSON {\"name\": NAME, \"set\": DATASET}");
  const json policy = {{"alias", "production"},
                       {"require", {"exact_match >= 0.5", "exact_match => 0.5"}},
                       {"source", "team.toml"},
                       {"lines", {4, 5}}};
  EXPECT_EQ(error("/api/adapters/rank/policies", json{{"policy", policy}}.dump()),
            "team.toml:5: policy.production.require[1]: 'exact_match => 0.5' compares with '=>'; "
            "a condition is METRIC OP NUMBER with OP one of >= > <= <, such as \"exact_match >= "
            "0.80\"");
  const HttpAnswer refused =
      http.Post("/api/adapters/rank/promotions", R"({"alias": "production", "version": 1})");
  EXPECT_EQ(refused.status, 200) << refused.body;  // no policy: it moves
}

// Every endpoint, under every role and with no token, a wrong one and a revoked one: allowed
// exactly from its role up.
TEST_F(RegistryServer, EveryEndpointNeedsItsRole) {
  const auto owner = Client(server_->url());
  owner->Register("rank", SampleRecord(), Artifact("w"));
  const std::string run = owner->CreateRun({"rank", std::nullopt, std::nullopt, ""});
  std::map<std::string, std::string> tokens;
  for (const Role role : {Role::kRead, Role::kWrite, Role::kPromote, Role::kAdmin}) {
    tokens[std::string(RoleName(role))] =
        owner->AddToken(std::string(RoleName(role)) + "-token", role);
  }
  tokens["revoked"] = owner->AddToken("gone", Role::kAdmin);
  owner->RevokeToken("gone");
  tokens["wrong"] = "read-token.0000000000000000000000000000000000000000000000000000000000000000";
  tokens["none"] = "";

  struct Endpoint {
    std::string method, target, body;
    Role needs;
  };
  const std::string digest(64, 'e');
  const std::vector<Endpoint> endpoints = {
      {"GET", "/api/names", "", Role::kRead},
      {"GET", "/api/adapters", "", Role::kRead},
      {"GET", "/api/versions", "", Role::kRead},
      {"GET", "/api/versions?detail=full", "", Role::kRead},
      {"GET", "/api/resolve?ref=rank", "", Role::kRead},
      {"GET", "/api/adapters/rank/versions/1", "", Role::kRead},
      {"GET", "/api/adapters/rank/versions/1/files/adapter_model.safetensors", "", Role::kRead},
      {"GET", "/api/adapters/rank/aliases", "", Role::kRead},
      {"GET", "/api/adapters/rank/history", "", Role::kRead},
      {"GET", "/api/datasets", "", Role::kRead},
      {"GET", "/api/runs", "", Role::kRead},
      {"GET", "/api/runs/" + run, "", Role::kRead},
      {"GET", "/api/sweeps", "", Role::kRead},
      {"POST", "/api/objects/received", R"({"objects": []})", Role::kWrite},
      {"PUT", "/api/objects/" + digest + "?size=1&offset=0", "x", Role::kWrite},
      {"POST", "/api/runs", R"({"run": {"id": "", "name": "rank"}})", Role::kWrite},
      {"POST", "/api/runs/" + run + "/metrics", R"({"metrics": []})", Role::kWrite},
      {"POST", "/api/runs/" + run + "/finish", R"({"status": "finished"})", Role::kWrite},
      {"POST", "/api/adapters/rank/versions", R"({"record": {}})", Role::kWrite},
      {"POST", "/api/datasets/task", R"({"record": {}})", Role::kWrite},
      {"POST", "/api/adapters/rank/aliases/staging", R"({"version": 1})", Role::kPromote},
      {"POST", "/api/registry/verify", "{}", Role::kAdmin},
      {"POST", "/api/registry/gc", R"({"grace_seconds": 86400})", Role::kAdmin},
      {"GET", "/api/tokens", "", Role::kAdmin},
      {"POST", "/api/tokens", R"({"name": "x", "role": "read"})", Role::kAdmin},
      {"POST", "/api/tokens/nobody/revoke", "{}", Role::kAdmin},
      {"GET", "/api/reviews", "", Role::kRead},
      {"GET", "/api/reviews/qa/results", "", Role::kRead},
      {"POST", "/api/reviews", R"({"name": "qa", "set": "qa"})", Role::kWrite},
      {"POST", "/api/reviews/qa/outputs", R"({"contestant": "base"})", Role::kWrite},
      {"POST", "/api/reviews/qa/next", "{}", Role::kRead},
      {"POST", "/api/reviews/qa/judgements", R"({"pair": 1, "verdict": "tie"})", Role::kRead},
      {"POST", "/api/reviews/qa/close", "{}", Role::kPromote},
      {"GET", "/api/adapters/rank/promotions", "", Role::kRead},
      {"GET", "/api/adapters/rank/policies", "", Role::kRead},
      {"GET", "/api/adapters/rank/policies/production/check?version=1", "", Role::kWrite},
      {"POST", "/api/adapters/rank/promotions", R"({"alias": "staging", "version": 1})",
       Role::kPromote},
      {"POST", "/api/adapters/rank/promotions/1/approve", "{}", Role::kPromote},
      {"POST", "/api/adapters/rank/policies", R"({"policy": {"alias": "x"}})", Role::kAdmin},
      {"POST", "/api/adapters/rank/policies/production/remove", "{}", Role::kAdmin},
      {"POST", "/api/adapters/rank/aliases/staging", R"({"version": 1, "override_reason": "x"})",
       Role::kAdmin},
  };
  for (const Endpoint& endpoint : endpoints) {
    for (const auto& [who, token] : tokens) {
      const HttpClient http = Http(server_->url(), token);
      HttpAnswer answer;
      if (endpoint.method == "GET") answer = http.Get(endpoint.target);
      if (endpoint.method == "POST") answer = http.Post(endpoint.target, endpoint.body);
      if (endpoint.method == "PUT") answer = http.Put(endpoint.target, endpoint.body, {});
      const std::optional<Role> role = RoleFromName(who);
      const std::string what = endpoint.method + " " + endpoint.target + " as " + who + ": " +
                               std::to_string(answer.status) + " " + answer.body.substr(0, 200);
      if (!role) {
        EXPECT_EQ(answer.status, 401) << what;
      } else if (*role < endpoint.needs) {
        EXPECT_EQ(answer.status, 403) << what;
      } else {
        EXPECT_NE(answer.status, 401) << what;
        EXPECT_NE(answer.status, 403) << what;
      }
    }
  }
  // Health answers anyone, and tells a token's role; a revoked token is no one's.
  EXPECT_EQ(json::parse(Http(server_->url(), tokens["write"]).Get("/api/health").body)["role"],
            "write");
  EXPECT_TRUE(json::parse(Http(server_->url(), tokens["revoked"]).Get("/api/health").body)["role"]
                  .is_null());
  EXPECT_THROW(Client(server_->url(), tokens["read"])->MoveAlias("rank", "production", 1),
               RegistryDenied);
  EXPECT_THROW(Client(server_->url(), "")->Names(), RegistryDenied);
}

TEST_F(RegistryServer, ReadsWithoutATokenOnlyWhereTheServerOpensThem) {
  LocalRegistry::Open(dir_.path() / "open", Mode::kCreate)
      ->Register("rank", SampleRecord(), Artifact("w"));
  const auto open = Serve(dir_.path() / "open", /*open_reads=*/true);
  EXPECT_EQ(Client(open->url(), "")->Resolve("rank").version, 1);
  EXPECT_THROW(Client(open->url(), "")->MoveAlias("rank", "production", 1), RegistryDenied);
  EXPECT_THROW(Client(server_->url(), "")->Names(), RegistryDenied);
}

TEST_F(RegistryServer, ATokenIsStoredOnlyAsItsHash) {
  const std::string token = Client(server_->url())->AddToken("carol", Role::kWrite);
  const std::string secret = token.substr(token.find('.') + 1);
  ASSERT_EQ(secret.size(), 64u);
  // Nowhere under the registry: not in the database's files, not in any object.
  for (const auto& entry : fs::recursive_directory_iterator(dir_.path() / "served")) {
    if (!entry.is_regular_file()) continue;
    EXPECT_EQ(testing::ReadText(entry.path()).find(secret), std::string::npos) << entry.path();
  }
  EXPECT_EQ(Client(server_->url(), token)->Names().size(), 0u);
}

TEST_F(RegistryServer, BindingAnotherAddressNeedsTlsOrInsecureHttp) {
  ServeOptions options;
  options.registry = dir_.path() / "served";
  options.host = "0.0.0.0";
  options.port = 0;
  options.token = kOwner;
  try {
    WebServer::Start(options);
    FAIL() << "served 0.0.0.0 in plain HTTP";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              "serving 0.0.0.0 without TLS would send tokens and adapters across the network in "
              "the clear; pass --tls-cert and --tls-key, or --insecure-http on a network you "
              "trust");
  }
  options.insecure_http = true;
  EXPECT_NE(WebServer::Start(options), nullptr);
}

// A CA and a server certificate for 127.0.0.1, made with openssl for the test.
struct Certificates {
  fs::path ca, cert, key, other_ca;
};
Certificates MakeCertificates(const fs::path& dir) {
  const std::string d = dir.string();
  const std::string script =
      "set -e; cd " + d +
      "; openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=tune-test-ca "
      "-keyout ca.key -out ca.pem 2>/dev/null"
      "; openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca "
      "-keyout other.key -out other.pem 2>/dev/null"
      "; openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key "
      "-out server.csr 2>/dev/null"
      "; printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext"
      "; openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
      "-extfile san.ext -out server.pem 2>/dev/null";
  const auto made = testing::RunCommand({"/bin/sh", "-c", script});
  EXPECT_EQ(made.exit_code, 0) << made.err;
  return {dir / "ca.pem", dir / "server.pem", dir / "server.key", dir / "other.pem"};
}

TEST_F(RegistryServer, TlsWithACertificateTheTestMakes) {
  const Certificates certs = MakeCertificates(dir_.path());
  LocalRegistry::Open(dir_.path() / "tls", Mode::kCreate)
      ->Register("rank", SampleRecord(), Artifact("tls weights"));
  const auto server = Serve(dir_.path() / "tls", false, certs.cert, certs.key);
  ASSERT_TRUE(server->url().starts_with("https://127.0.0.1:")) << server->url();

  const auto client = Client(server->url(), kOwner, certs.ca.string());
  EXPECT_EQ(client->Resolve("rank").version, 1);
  client->Fetch("rank", dir_.path() / "fetched");
  EXPECT_EQ(testing::ReadText(dir_.path() / "fetched" / "adapter_model.safetensors"),
            "tls weights");
  EXPECT_EQ(client->Register("rank", SampleRecord(), Artifact("more")), 2);

  try {
    Client(server->url(), kOwner, certs.other_ca.string());
    FAIL() << "trusted a certificate no trusted CA signed";
  } catch (const RegistryUnreachable& e) {
    EXPECT_NE(std::string(e.what()).find("its certificate is not trusted"), std::string::npos)
        << e.what();
  }
  // A plain-HTTP client against the TLS port, and a TLS client against a plain one.
  const std::string port = server->url().substr(server->url().rfind(':'));
  try {
    Client("http://127.0.0.1" + port);
    FAIL() << "plain HTTP reached a TLS port";
  } catch (const RegistryUnreachable& e) {
    EXPECT_NE(std::string(e.what()).find("if the server serves TLS, use https://"),
              std::string::npos)
        << e.what();
  }
  const std::string plain_port = server_->url().substr(server_->url().rfind(':'));
  try {
    Client("https://127.0.0.1" + plain_port, kOwner, certs.ca.string());
    FAIL() << "TLS reached a plain HTTP port";
  } catch (const RegistryUnreachable& e) {
    EXPECT_NE(std::string(e.what()).find("the TLS handshake failed"), std::string::npos)
        << e.what();
  }
}

TEST_F(RegistryServer, AServerThatCannotBeReachedSaysSoAndHow) {
  const std::string port = server_->url().substr(server_->url().rfind(':'));
  server_.reset();
  try {
    Client("http://127.0.0.1" + port);
    FAIL() << "reached a stopped server";
  } catch (const RegistryUnreachable& e) {
    EXPECT_EQ(std::string(e.what()).rfind("cannot reach the registry server at http://127.0.0.1" +
                                              port + ": the connection was refused (",
                                          0),
              0u)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("is `tune serve` running there, on that port?"),
              std::string::npos);
  }
}

// A free port on the loopback address (a server restarted on it must find it again).
int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// An adapter of 64 MiB that no other has (`seed`).
fs::path BigArtifact(const fs::path& dir, int seed) {
  std::string weights(64 << 20, '\0');
  uint64_t state = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(seed + 1);
  for (size_t i = 0; i < weights.size(); i += 8) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    std::memcpy(&weights[i], &state, 8);
  }
  return MakeArtifact(dir, weights);
}

// Waits until the server holds part of the weights' upload (at least one chunk, not all), or the
// client is done. True when it caught the upload midway.
bool CaughtMidUpload(const fs::path& registry, testing::ChildProcess& client) {
  const fs::path uploads = registry / "objects" / "uploads";
  // The upload may take seconds on a busy machine, or finish between two looks on a quick one.
  for (int look = 0; look < 120'000 && !client.Exited(); ++look) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(uploads, ec)) {
      const auto size = fs::file_size(entry.path(), ec);
      if (!ec && size >= wire::kChunkBytes && size < (64u << 20)) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

// The server dies in the middle of an upload and comes back on the same port: the client goes on
// from the bytes that arrived, and the version is registered once.
TEST(RegistryServerProcesses, AServerKilledMidUploadAndRestartedLosesAndDoublesNothing) {
  TempDir dir;
  const fs::path token = dir.Write("token", kOwner);
  for (int attempt = 0; attempt < 5; ++attempt) {
    const fs::path registry = dir.path() / ("registry-" + std::to_string(attempt));
    LocalRegistry::Open(registry, Mode::kCreate);
    const int port = FreeLoopbackPort();
    auto server = std::make_unique<testing::ServeProcess>(
        registry, std::vector<std::string>{"--token-file", token.string()}, port);
    ASSERT_EQ(server->port(), port) << server->first_lines();
    testing::ChildProcess client(
        {TUNE_REGISTRY_TEST_WRITER, "remote-register", server->url(),
         BigArtifact(dir.path() / ("big-" + std::to_string(attempt)), attempt).string()},
        {{"TUNE_TOKEN", kOwner}});
    if (!CaughtMidUpload(registry, client)) continue;  // it finished first: try a new one
    server->Stop(SIGKILL);
    server = std::make_unique<testing::ServeProcess>(
        registry, std::vector<std::string>{"--token-file", token.string()}, port);
    const std::vector<std::string> printed = client.ReadLines(120'000, 1);
    ASSERT_EQ(client.Wait(), 0) << "the client gave up";
    ASSERT_EQ(printed.size(), 1u);
    EXPECT_TRUE(printed[0].starts_with("1 ")) << printed[0];
    server.reset();
    auto local = LocalRegistry::Open(registry, Mode::kReadWrite);
    EXPECT_EQ(local->List().size(), 1u);
    EXPECT_TRUE(local->Verify().problems.empty());
    EXPECT_TRUE(fs::is_empty(registry / "objects" / "uploads"));
    return;
  }
  FAIL() << "every upload finished before the test could stop the server midway";
}

// The client dies in the middle of an upload: no version appears, and gc removes what arrived.
TEST(RegistryServerProcesses, AClientKilledMidUploadLeavesNoVersionAndGcRemovesItsChunks) {
  TempDir dir;
  const fs::path registry = dir.path() / "registry";
  LocalRegistry::Open(registry, Mode::kCreate);
  const fs::path token = dir.Write("token", kOwner);
  testing::ServeProcess server(registry, {"--token-file", token.string()});
  for (int attempt = 0; attempt < 5; ++attempt) {
    testing::ChildProcess client(
        {TUNE_REGISTRY_TEST_WRITER, "remote-register", server.url(),
         BigArtifact(dir.path() / ("big-" + std::to_string(attempt)), attempt).string()},
        {{"TUNE_TOKEN", kOwner}});
    if (!CaughtMidUpload(registry, client)) continue;
    client.Kill();
    const auto remote = Client(server.url());
    EXPECT_THROW(remote->Resolve("big"), UserError);  // no version, whole or partial
    EXPECT_FALSE(fs::is_empty(registry / "objects" / "uploads"));
    const GcReport report = remote->Gc(std::chrono::seconds(0));
    EXPECT_GE(report.temp_files_removed, 1);
    EXPECT_TRUE(fs::is_empty(registry / "objects" / "uploads"));
    EXPECT_TRUE(remote->Verify().problems.empty());
    return;
  }
  FAIL() << "every upload finished before the test could stop the client midway";
}

}  // namespace
}  // namespace tune
