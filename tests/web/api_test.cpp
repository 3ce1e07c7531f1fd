// The JSON API called directly, as server.cpp calls it, without sockets: hosts, tokens and roles,
// body limits, and what a route answers.
#include "web/api.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "registry/local_registry.h"
#include "registry/registry_test_util.h"
#include "registry/wire.h"
#include "support/test_support.h"

namespace tune {
namespace {

using nlohmann::json;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = LocalRegistry::Open(dir_.path() / "registry", Registry::OpenMode::kCreate);
    registry_->Register("rank", testing::SampleRecord(4, 0.5),
                        testing::MakeArtifact(dir_.path() / "a1", "one"));
    registry_->Register("rank", testing::SampleRecord(8, 0.75),
                        testing::MakeArtifact(dir_.path() / "a2", "two"));
    api_ = std::make_unique<Api>(*registry_, ServerAccess{"owner-secret", false},
                                 ServerNames{"http", 8080, {"127.0.0.1"}});
  }

  HttpRequest Request(const std::string& method, const std::string& path,
                      const std::string& token = "", const std::string& body = "") const {
    HttpRequest request{method, path, {}, {{"host", "127.0.0.1:8080"}}, body};
    if (!token.empty()) request.headers["authorization"] = "Bearer " + token;
    return request;
  }

  testing::TempDir dir_;
  std::unique_ptr<LocalRegistry> registry_;
  std::unique_ptr<Api> api_;
};

TEST_F(ApiTest, AHostThatIsNotThisServersIsRefusedBeforeAnythingElse) {
  HttpRequest request = Request("GET", "/api/adapters", "owner-secret");
  EXPECT_FALSE(api_->RefuseHost(request).has_value());
  request.headers["host"] = "attacker.example:8080";
  const std::optional<HttpResponse> refused = api_->RefuseHost(request);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->status, 403);
}

TEST_F(ApiTest, EveryRouteButHealthNeedsAToken) {
  EXPECT_EQ(api_->Handle(Request("GET", "/api/health")).status, 200);
  EXPECT_EQ(api_->Handle(Request("GET", "/api/adapters")).status, 401);
  EXPECT_EQ(api_->Handle(Request("GET", "/api/adapters", "not-a-token")).status, 401);
  const HttpResponse listed = api_->Handle(Request("GET", "/api/adapters", "owner-secret"));
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_NE(listed.body.find("\"rank\""), std::string::npos) << listed.body;
}

TEST_F(ApiTest, ARoleBelowTheRoutesIsRefusedAndTheRegistryIsUnchanged) {
  const std::string reader = registry_->AddToken("rita", Role::kRead);
  const std::string promoter = registry_->AddToken("pat", Role::kPromote);
  const std::string body = wire::Dump({{"version", 1}});
  const HttpResponse refused =
      api_->Handle(Request("POST", "/api/adapters/rank/aliases/production", reader, body));
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_TRUE(registry_->Aliases("rank").empty());
  const HttpResponse moved =
      api_->Handle(Request("POST", "/api/adapters/rank/aliases/production", promoter, body));
  ASSERT_EQ(moved.status, 200) << moved.body;
  EXPECT_EQ(registry_->Aliases("rank").at("production"), 1);
  EXPECT_EQ(registry_->History("rank").back().by, "pat");  // who moved it, from the token
  // A reader still reads.
  EXPECT_EQ(api_->Handle(Request("GET", "/api/adapters/rank/versions/2", reader)).status, 200);
}

TEST_F(ApiTest, TheBodyLimitFollowsTheRouteAndTheToken) {
  const std::string reader = registry_->AddToken("rita", Role::kRead);
  const std::string writer = registry_->AddToken("wes", Role::kWrite);
  const std::string digest(64, 'a');
  // An upload's chunk only with a token that may write; a record for a writer; little for others.
  EXPECT_EQ(api_->BodyLimit(Request("PUT", "/api/objects/" + digest)), Api::kMaxBodyBytes);
  EXPECT_EQ(api_->BodyLimit(Request("PUT", "/api/objects/" + digest, reader)), Api::kMaxBodyBytes);
  EXPECT_GE(api_->BodyLimit(Request("PUT", "/api/objects/" + digest, writer)), wire::kChunkBytes);
  EXPECT_GT(api_->BodyLimit(Request("POST", "/api/adapters/rank/versions", writer)),
            Api::kMaxBodyBytes);
  EXPECT_EQ(api_->BodyLimit(Request("POST", "/api/adapters/rank/aliases/production", reader)),
            Api::kMaxBodyBytes);
}

TEST_F(ApiTest, ASweepsTrialsCarryTheirTypedParameters) {
  RunInfo info{"rank", "rank-1", 1, "[adapter]\nrank = 4\n"};
  info.params = {{"adapter.rank", int64_t{4}}, {"optimizer.lr", 0.001}, {"adapter.bias", false}};
  registry_->FinishRun(registry_->CreateRun(info), RunStatus::kFinished);
  const HttpResponse sweep = api_->Handle(Request("GET", "/api/sweeps/rank-1", "owner-secret"));
  ASSERT_EQ(sweep.status, 200) << sweep.body;
  const json trial = json::parse(sweep.body)["trials"][0];
  EXPECT_EQ(trial["params"],
            json({{"adapter.rank", 4}, {"optimizer.lr", 0.001}, {"adapter.bias", false}}))
      << sweep.body;
}

}  // namespace
}  // namespace tune
