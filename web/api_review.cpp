// People's judgement over HTTP (registry/wire.h lists the routes): reviews, blind pairs,
// judgements and results, promotion policies, requests and approvals. A rater is the token's
// name: a request without a named token cannot rate.
#include <nlohmann/json.hpp>

#include "registry/local_registry.h"
#include "registry/wire.h"
#include "util/echo.h"
#include "util/names.h"
#include "web/api.h"
#include "web/api_internal.h"

namespace tune {
namespace {

using nlohmann::json;
using namespace web_internal;

std::string Text(const json& body, const char* key, const char* shape) {
  const auto it = body.find(key);
  if (it == body.end() || !it->is_string()) {
    throw UserError(std::string("\"") + key + "\" is text: the body is JSON " + shape);
  }
  return it->get<std::string>();
}

void RequireName(const std::string& name, const char* what) {
  if (!IsValidName(name)) {
    throw UserError(std::string("invalid ") + what + " '" + Echo(name, 64) +
                    "': names are 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit");
  }
}

// A rater is a person with a token of their own: its name is whom their judgements are kept as.
void RequireRater(const Api::Caller& caller) {
  Require(caller, Role::kRead);
  if (caller.name.empty()) throw NotAllowed{Role::kRead};
}

// Whether `caller` is a rater and not one of those who run reviews (a token below the write role).
bool BelowWrite(const Api::Caller& caller) { return !caller.role || *caller.role < Role::kWrite; }

// A review as `caller` may see it: while it is open, a rater (a token below the write role) is not
// told where each contestant's outputs are stored, which would say who wrote what they judge.
json ReviewFor(const ReviewRecord& review, const Api::Caller& caller) {
  json answer = wire::ReviewToJson(review);
  if (review.closed_ms == 0 && BelowWrite(caller)) {
    for (json& outputs : answer["outputs"]) outputs.erase("object");
  }
  return answer;
}

}  // namespace

std::optional<HttpResponse> Api::GetForReviews(const HttpRequest& request,
                                               const std::vector<std::string>& parts,
                                               const Caller& caller) const {
  if (parts.size() >= 1 && parts[0] == "reviews") {
    if (parts.size() == 1) {
      json reviews = json::array();
      for (const ReviewRecord& review : registry_.ListReviews()) {
        reviews.push_back(ReviewFor(review, caller));
      }
      return JsonResponse(reviews);
    }
    RequireName(parts[1], "review name");
    if (parts.size() == 2) return JsonResponse(ReviewFor(registry_.GetReview(parts[1]), caller));
    if (parts.size() == 3 && parts[2] == "results") {
      // A rater who saw the ratings move after their own judgement could tell who wrote what.
      if (BelowWrite(caller) && registry_.GetReview(parts[1]).closed_ms == 0) {
        return ErrorResponse(403, "the results of review " + parts[1] +
                                      " are shown once it is closed, or to a token of the write "
                                      "role: a rater who saw them move could tell who wrote what");
      }
      return JsonResponse(wire::ResultsToJson(registry_.Results(parts[1])));
    }
    if (parts.size() == 3 && parts[2] == "judgements") {
      json pairs = json::array();
      for (const ShownPair& pair : registry_.Judgements(parts[1])) {
        pairs.push_back(wire::ShownPairToJson(pair));
      }
      return JsonResponse(pairs);
    }
    return std::nullopt;
  }
  if (parts.size() >= 3 && parts[0] == "adapters") {
    const std::string& name = parts[1];
    if (parts.size() == 3 && parts[2] == "promotions") {
      RequireName(name, "adapter name");
      json requests = json::array();
      for (const PromotionRequest& asked : registry_.PromotionRequests(name)) {
        requests.push_back(wire::PromotionToJson(asked));
      }
      return JsonResponse(requests);
    }
    if (parts.size() == 3 && parts[2] == "policies") {
      RequireName(name, "adapter name");
      json policies = json::array();
      for (const AliasPolicy& policy : registry_.Policies(name)) {
        policies.push_back(wire::PolicyToJson(policy));
      }
      return JsonResponse(policies);
    }
    if (parts.size() == 5 && parts[2] == "policies" && parts[4] == "check") {
      // Its human.* values come from open reviews too: not for raters, for the same reason.
      Require(caller, Role::kWrite);
      RequireName(name, "adapter name");
      RequireName(parts[3], "alias");
      const auto it = request.query.find("version");
      const std::optional<int64_t> version =
          it == request.query.end() ? std::nullopt : ParseVersion(it->second);
      if (!version) return ErrorResponse(400, "check needs version=N (1, 2, 3, ...)");
      return JsonResponse(
          wire::PolicyChecksToJson(registry_.CheckPolicy(name, parts[3], *version)));
    }
  }
  return std::nullopt;
}

std::optional<HttpResponse> Api::PostForReviews(const HttpRequest& request,
                                                const std::vector<std::string>& parts,
                                                const Caller& caller) const {
  if (parts.size() >= 1 && parts[0] == "reviews") {
    if (parts.size() == 1) {
      Require(caller, Role::kWrite);
      const char* shape = "{\"name\": NAME, \"set\": DATASET}";
      const json body = Body(request, shape);
      const std::string name = Text(body, "name", shape);
      RequireName(name, "review name");
      registry_.Acting(caller.name)->CreateReview(name, Text(body, "set", shape));
      return JsonResponse(wire::ReviewToJson(registry_.GetReview(name)));
    }
    RequireName(parts[1], "review name");
    const std::string& review = parts[1];
    if (parts.size() != 3) return std::nullopt;
    if (parts[2] == "outputs") {
      Require(caller, Role::kWrite);
      const char* shape =
          "{\"contestant\": NAME:N or base, \"object\": {\"digest\", \"size_bytes\"}, "
          "\"generation\": TEXT}";
      const json body = Body(request, shape);
      const auto object = body.find("object");
      if (object == body.end() || !object->is_object()) {
        throw UserError(std::string("\"object\" names the outputs' stored object: ") + shape);
      }
      const std::optional<int64_t> size = WholeNumber(object->value("size_bytes", json()), 0);
      if (!size) throw UserError("\"size_bytes\" of the object is a whole number");
      const ManifestEntry entry{"outputs.jsonl", object->value("digest", ""), *size};
      registry_.Acting(caller.name)
          ->AddStoredReviewOutputs(review, Text(body, "contestant", shape), entry,
                                   body.value("generation", ""));
      return JsonResponse(wire::ReviewToJson(registry_.GetReview(review)));
    }
    if (parts[2] == "next") {
      RequireRater(caller);
      const std::optional<BlindPair> pair = registry_.Acting(caller.name)->NextPair(review);
      return JsonResponse(pair ? wire::BlindPairToJson(*pair) : json{{"done", true}});
    }
    if (parts[2] == "judgements") {
      RequireRater(caller);
      const char* shape =
          "{\"pair\": ID, \"verdict\": \"left\" | \"right\" | \"tie\" | \"both_bad\", "
          "\"reason\": TEXT}";
      const json body = Body(request, shape);
      const std::optional<int64_t> pair = WholeNumber(body.value("pair", json()), 1);
      const std::optional<Verdict> verdict = VerdictFromName(body.value("verdict", ""));
      if (!pair || !verdict) throw UserError(std::string("the body is JSON ") + shape);
      const json reason = body.value("reason", json(""));
      if (!reason.is_string()) throw UserError("\"reason\" is text");
      registry_.Acting(caller.name)->Judge(review, *pair, *verdict, reason.get<std::string>());
      return JsonResponse({{"judged", *pair}});
    }
    if (parts[2] == "close") {
      Require(caller, Role::kPromote);
      registry_.Acting(caller.name)->CloseReview(review);
      return JsonResponse(wire::ReviewToJson(registry_.GetReview(review)));
    }
    return std::nullopt;
  }
  if (parts.size() >= 3 && parts[0] == "adapters") {
    const std::string& name = parts[1];
    if (parts.size() == 3 && parts[2] == "promotions") {
      Require(caller, Role::kPromote);
      RequireName(name, "adapter name");
      const char* shape = "{\"alias\": ALIAS, \"version\": N, \"expect_version\": M}";
      const json body = Body(request, shape);
      const std::optional<int64_t> version = WholeNumber(body.value("version", json()), 1);
      if (!version) throw UserError(std::string("the body is JSON ") + shape);
      std::optional<int64_t> expected;
      if (body.contains("expect_version")) {
        expected = WholeNumber(body["expect_version"], 0);
        if (!expected) throw UserError("expect_version is a version, or 0 for unset");
      }
      return JsonResponse(wire::PromotionToJson(
          registry_.Acting(caller.name)
              ->Promote(name, Text(body, "alias", shape), *version, expected)));
    }
    if (parts.size() == 5 && parts[2] == "promotions" && parts[4] == "approve") {
      Require(caller, Role::kPromote);
      RequireName(name, "adapter name");
      const std::optional<int64_t> id = ParseVersion(parts[3]);
      if (!id) return ErrorResponse(400, "a promotion request is named by its number: 1, 2, ...");
      return JsonResponse(wire::PromotionToJson(registry_.Acting(caller.name)->Approve(name, *id)));
    }
    if (parts.size() == 3 && parts[2] == "policies") {
      Require(caller, Role::kAdmin);
      RequireName(name, "adapter name");
      const json body = Body(request, "{\"policy\": POLICY}");
      const auto policy = body.find("policy");
      if (policy == body.end() || !policy->is_object()) {
        throw UserError("the body is JSON {\"policy\": {\"alias\", \"require\", \"approvers\"}}");
      }
      AliasPolicy given;
      try {
        json named = *policy;
        named["name"] = name;
        given = wire::PolicyFromJson(named);
      } catch (const json::exception&) {
        throw UserError(
            "a policy is {\"alias\": ALIAS, \"require\": [CONDITION, ...], \"approvers\": N}");
      }
      registry_.Acting(caller.name)->SetPolicy(given);
      return JsonResponse(wire::PolicyToJson(given));
    }
    if (parts.size() == 5 && parts[2] == "policies" && parts[4] == "remove") {
      Require(caller, Role::kAdmin);
      RequireName(name, "adapter name");
      RequireName(parts[3], "alias");
      registry_.Acting(caller.name)->RemovePolicy(name, parts[3]);
      return JsonResponse({{"removed", parts[3]}});
    }
  }
  return std::nullopt;
}

}  // namespace tune
