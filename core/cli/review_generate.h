// `tune review generate NAME VERSION...` (DESIGN section 11): each version's outputs on a review's
// prompts, and the base model's as a contestant of its own, recorded with the review.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace tune {

class Registry;

struct ReviewGeneration {
  std::string review;
  std::vector<std::string> versions;  // NAME:N, NAME@ALIAS or NAME, of one base model
  int64_t max_new_tokens = 128;
  // Each contestant's outputs are written here line by line (REVIEW/CONTESTANT.jsonl) before they
  // are recorded: a run that stops goes on from the last whole line.
  std::filesystem::path work_dir = ".tune/reviews";
};

// Generates, greedily with seed 0 and the model's chat template where it has one, the outputs of
// every contestant the review has not recorded yet (base first), and records each. Progress goes
// to the log. Returns the contestants recorded. UserError for a closed review, versions of
// different base models, or a base model that is not on this machine; Interrupted on SIGINT or
// SIGTERM, saying how to go on.
std::vector<std::string> GenerateReviewOutputs(Registry& registry,
                                               const ReviewGeneration& generation);

}  // namespace tune
