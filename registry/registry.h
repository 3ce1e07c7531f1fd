// Registry: adapter versions, their lineage, the aliases that point at them, and the runs that
// produced them (DESIGN sections 5 and 10). No libtorch: the web view and tools link this alone.
//
// One interface, two implementations, chosen by where the registry is (Registry::Open):
//   a folder (/data/registry, .tune/registry)  the embedded registry, RocksDB and content-addressed
//                                              files on this machine (local_registry.h)
//   a URL (https://host:8443)                  a `tune serve` registry server, over HTTP(S); its
//                                              token from RemoteAccess or $TUNE_TOKEN
// Every command works against either with the same results; what differs is said below.
//
// Errors: every refusal is a UserError (util/error.h) whose what() is one line saying what is
// wrong, where, and how to fix it. Refusals a caller may want to tell apart are subclasses:
// RegistryBusy (another process writes), RegistryDamaged, AliasConflict (a compare-and-set
// lost), RegistryUnreachable (a server that cannot be reached: worth retrying) and
// RegistryDenied (a server refused the token).
//
// Threads: any number of threads may use one Registry. Every call sees every write that returned
// before the call began, from any process or machine: a view that would not (a damaged log) is
// an error naming the damage, never a shorter answer. Durability: a write call that returns has
// reached the disk (the server's, for a URL), except LogMetrics, which buffers (see there).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "util/error.h"
#include "util/pairwise.h"

namespace tune {

// Another process held the registry for one write for longer than the caller would wait.
class RegistryBusy : public UserError {
 public:
  RegistryBusy(const std::string& message, pid_t pid) : UserError(message), pid_(pid) {}
  pid_t pid() const { return pid_; }  // 0 when the holder could not be identified

 private:
  pid_t pid_;
};

// The registry's database is damaged: a table fails its checksum, records are missing that its
// counts name, or its log lost writes that returned. What was asked is refused rather than
// answered from what is left; `tune registry verify` lists the damage.
class RegistryDamaged : public UserError {
 public:
  using UserError::UserError;
};

// A registry server that cannot be reached: refused, timed out, a TLS handshake that failed, a
// connection cut. What was sent before may or may not have arrived; every write is safe to retry.
class RegistryUnreachable : public UserError {
 public:
  using UserError::UserError;
};

// A registry server refused the request's token: none, unknown, revoked, or of a role below the
// one the request needs.
class RegistryDenied : public UserError {
 public:
  using UserError::UserError;
};

// MoveAlias found the alias somewhere other than the caller expected.
class AliasConflict : public UserError {
 public:
  using UserError::UserError;
};

// A promotion its alias's policy does not allow (yet): the conditions that fail, each with how far
// it is from passing, are in what() and checks().
struct PolicyCheck;
class PolicyRefused : public UserError {
 public:
  PolicyRefused(const std::string& message, std::vector<PolicyCheck> checks);
  ~PolicyRefused() override;
  const std::vector<PolicyCheck>& checks() const { return checks_; }

 private:
  std::vector<PolicyCheck> checks_;
};

// A hyper-parameter's value, as the run config wrote it: "adapter.rank" -> 16.
using ParamValue = std::variant<bool, int64_t, double, std::string>;

struct CurvePoint {
  int64_t step = 0;
  double loss = 0.0;
  double lr = 0.0;
  bool operator==(const CurvePoint&) const = default;
};

struct PluginRef {
  std::string kind;  // dataset, model, adapter, optimizer, metric
  std::string name;
  std::string version;
  bool operator==(const PluginRef&) const = default;
};

// How to read a score, as its metric declares it: whether larger is better (every "gain" is
// coloured by it) and the values it can take. Recorded with each version, so that a reader (the
// web view) needs no plugin to tell a better eval_loss from a worse one.
struct ScoreScale {
  std::string goal = "maximize";  // maximize | minimize
  std::optional<double> min;      // none: unbounded
  std::optional<double> max;
  bool operator==(const ScoreScale&) const = default;
};

// One file of a stored artifact.
struct ManifestEntry {
  std::string path;    // relative, '/'-separated: "adapter_model.safetensors"
  std::string digest;  // SHA-256 of the bytes, 64 lowercase hex digits
  int64_t size_bytes = 0;
  bool operator==(const ManifestEntry&) const = default;
};

// Everything known about one version: how it was made and how well it did. Register fills in
// name, version, created_ms (when 0), artifact_digest, artifact_size_bytes and files; the caller
// fills in the rest.
struct VersionRecord {
  std::string name;
  int64_t version = 0;
  int64_t created_ms = 0;  // unix time, milliseconds

  std::string method;                        // adapter method: lora, qlora, full
  std::map<std::string, ParamValue> params;  // "adapter.rank" -> 16, "optimizer.lr" -> 2e-4
  std::string config_toml;                   // the full resolved run config

  std::string dataset_hash;
  int64_t train_examples = 0;
  int64_t eval_examples = 0;

  std::string base_model_name;  // e.g. the HF model id, or the folder name
  std::string base_model_path;
  std::string base_model_hash;
  std::string tokenizer_hash;
  int64_t seed = 0;

  std::map<std::string, double> scores;       // eval metrics of the adapted model
  std::map<std::string, double> base_scores;  // the same metrics of the base model alone
  // The generation metrics of the base model prompted with `few_shot` training examples (the
  // run's [eval] few_shot); empty when it had none.
  std::map<std::string, double> few_shot_scores;
  int64_t few_shot = 0;
  // Each score's scale; empty for versions registered before scales were recorded.
  std::map<std::string, ScoreScale> score_scales;
  std::vector<CurvePoint> curve;  // training loss and learning rate by step

  double wall_time_s = 0.0;
  int64_t trainable_parameters = 0;   // elements training updated; 0 when not recorded
  int64_t peak_memory_bytes = 0;      // peak resident set of the training process
  int64_t peak_gpu_memory_bytes = 0;  // peak GPU memory held for tensors; 0 when trained on a CPU
  double tokens_per_second = 0.0;
  std::vector<PluginRef> plugins;
  std::string tune_version;

  std::optional<std::string> sweep;  // the sweep and trial this version came from, if any
  std::optional<int64_t> trial;
  // The sweep's configuration the trial ran: trials of one configuration (its repeats) differ only
  // in their seed.
  std::optional<int64_t> configuration;
  std::string run_id;
  std::string registered_by;  // a server's token name, or USER@HOST; set by Register

  // What `tune data inspect` says of the training file, and the rows [dataset.quality] dropped
  // from it, by reason ("exact_duplicate": 212).
  std::string dataset_quality;
  std::map<std::string, int64_t> dataset_dropped;
  // The registered dataset version the training file is (Registry::RegisterDataset); empty and 0
  // for versions registered before datasets were.
  std::string dataset_name;
  int64_t dataset_version = 0;

  // The artifact: its files, and the SHA-256 of their manifest (ManifestText) with the total size.
  std::string artifact_digest;
  int64_t artifact_size_bytes = 0;
  std::vector<ManifestEntry> files;  // sorted by path

  // The evaluation outputs (eval_samples.jsonl: prompt, reference and prediction per example),
  // stored beside the artifact but not in it: `tune fetch` does not write them. Set by Register.
  std::optional<ManifestEntry> eval_samples;

  bool operator==(const VersionRecord&) const = default;
};

// A version of a dataset: one file's rows as a run or `tune data register` read them. Versions of
// a name start at 1; registering rows whose hash the latest version has already adds none.
struct DatasetRecord {
  std::string name;
  int64_t version = 0;
  int64_t created_ms = 0;
  std::string sha256;  // the dataset hash of its rows (data/dataset_identity.h)
  std::string source;  // the file, as an absolute path
  int64_t rows = 0;
  std::string summary;      // `tune data inspect`'s summary line
  std::string report_json;  // its whole report (QualityReportJson)
  // One line per row, in file order: "ROW_SHA256 PROMPT_SHA256 LINE" (the SHA-256 of the row's
  // canonical form and of its prompt), stored as an object: what `tune data diff` compares.
  ManifestEntry rows_object;
  // The rows themselves, when the dataset is a review set (JSONL: "prompt" and an optional
  // "reference" per line, as `tune review create` wrote them); unset for training files, whose
  // rows stay where they are.
  std::optional<ManifestEntry> content;
  std::string registered_by;  // a server's token name, or USER@HOST; set by RegisterDataset

  bool operator==(const DatasetRecord&) const = default;
};
std::string DatasetRecordToJson(const DatasetRecord& record, int indent = -1);
DatasetRecord DatasetRecordFromJson(std::string_view json);

// JSON text of a record (the lineage `tune fetch` writes as tune.json), and back. FromJson
// leaves missing fields at their defaults (older records still read) and throws UserError naming
// the first field that has the wrong type.
std::string VersionRecordToJson(const VersionRecord& record, int indent = -1);
VersionRecord VersionRecordFromJson(std::string_view json);

// "<digest> <size_bytes> <path>\n" per file, sorted by path; artifact_digest is its SHA-256.
std::string ManifestText(const std::vector<ManifestEntry>& files);

// A parsed adapter reference: NAME@ALIAS, NAME:N, NAME:vN, or NAME (the latest version).
// NAME@latest is the latest version too: `latest` is reserved, no alias may take it.
struct AdapterRef {
  std::string name;
  std::optional<int64_t> version;
  std::optional<std::string> alias;
};
inline constexpr std::string_view kLatestAlias = "latest";
// Throws UserError when `text` is not one of the four forms or a name is not a valid name.
AdapterRef ParseAdapterRef(std::string_view text);

// A parsed dataset reference: NAME:N, NAME:vN, or NAME (the latest version); datasets have no
// aliases. Throws UserError, naming it a dataset reference, for anything else.
struct DatasetRef {
  std::string name;
  std::optional<int64_t> version;
};
DatasetRef ParseDatasetRef(std::string_view text);

// One move of an alias, kept forever. Version 0 means "unset".
struct AliasMove {
  int64_t time_ms = 0;
  std::string alias;
  int64_t old_version = 0;
  int64_t new_version = 0;
  std::string by;  // who moved it: a server's token name, or USER@HOST; empty in older moves
  // Why, where the alias has a policy: the approved request ("request 3 by alice, approved by
  // bob"), or an admin's stated reason for overriding the policy (then `overridden`).
  std::string reason = {};
  bool overridden = false;
};

// Which versions List returns, in what order.
struct ListOptions {
  std::optional<std::string> name;  // only this adapter's versions
  // e.g. `scores.exact_match > 0.8 and adapter.rank = 16`: comparisons (= != < <= > >=) of a key
  // with a number or a string ('x', "x" or a bare word), joined by and/or/not and parentheses.
  // Keys: scores.M, base_scores.M, few_shot_scores.M, a parameter ("adapter.rank" or
  // params.adapter.rank), or an attribute: name, version, created_ms, method, seed, dataset.hash,
  // dataset.train_examples, dataset.eval_examples, base_model.name, base_model.path,
  // base_model.hash, tokenizer_hash, wall_time_s, trainable_parameters, peak_memory_bytes,
  // peak_gpu_memory_bytes, tokens_per_second, tune_version, sweep, trial, run_id, artifact.digest,
  // artifact.size_bytes. A version without the key does not match.
  std::string filter;
  // A key as above, '-' in front for descending; ties and the default: name, then version.
  // Versions without the key come last.
  std::string sort;
};

// How two versions differ. Keys absent on one side have no value there.
struct ValueChange {
  std::string key;
  std::optional<std::string> from;  // the value as text: 16, 0.0002, "cosine"
  std::optional<std::string> to;
};
struct ScoreChange {
  std::string metric;
  std::optional<double> from;
  std::optional<double> to;
};
struct VersionDiff {
  std::string from_ref;  // NAME:N of each side
  std::string to_ref;
  std::vector<ValueChange> attributes;     // method, dataset, base model, seed, plugins, ...
  std::vector<ValueChange> params;         // hyper-parameters
  std::vector<ValueChange> config;         // leaves of the resolved config ("optimizer.lr")
  std::vector<ScoreChange> scores;         // every metric either side has, changed or not
  std::vector<std::string> files_changed;  // artifact paths whose bytes differ or exist on one side
};
VersionDiff DiffVersions(const VersionRecord& from, const VersionRecord& to);
// {"from", "to", "attributes", "params", "config": [{key, from, to}], "scores": [{metric, from,
// to}], "files_changed"}, absent sides as null.
std::string VersionDiffToJson(const VersionDiff& diff, int indent = -1);

struct VerifyReport {
  int64_t objects_checked = 0;
  int64_t bytes_checked = 0;
  int64_t versions_checked = 0;
  std::vector<std::string> problems;  // one line each; empty when the registry is sound
};

struct GcReport {
  int64_t objects_removed = 0;
  int64_t bytes_removed = 0;
  int64_t temp_files_removed = 0;
  int64_t objects_kept = 0;
};

enum class RunStatus { kRunning, kFinished, kFailed, kKilled };
std::string_view RunStatusName(RunStatus status);  // running, finished, failed, killed
std::optional<RunStatus> RunStatusFromName(std::string_view name);  // nullopt for any other

struct RunInfo {
  std::string name;  // what the run trains: the adapter name it registers under
  std::optional<std::string> sweep;
  std::optional<int64_t> trial;
  std::string config_toml;
  // A sweep's trial, as the sweep knows it: the configuration it runs, its seed, and the score
  // the sweep optimises with its goal (maximize | minimize). Unset outside a sweep.
  std::optional<int64_t> configuration = {};
  std::optional<int64_t> seed = {};
  std::string objective = {};
  std::string objective_goal = {};
  // Where the run's process ran: its host, and the Slurm job ("1234_5": task 5 of array 1234)
  // when Slurm started it; and which attempt at its sweep trial it is (1, 2, ... after retries).
  std::string node = {};
  std::string job = {};
  std::optional<int64_t> attempt = {};
  // A sweep trial's swept values ("adapter.rank" -> 16), as its version's params hold them.
  std::map<std::string, ParamValue> params = {};
  bool operator==(const RunInfo&) const = default;
};

// The process that created a run, which finishes it (`tune train`, or the sweep of a trial, whose
// trials die with it): its PID, its start time in clock ticks after boot (/proc/PID/stat), and the
// machine's boot id and machine id, so that a reused PID, a reboot or another machine is not
// taken for it.
struct RunProcess {
  int64_t pid = 0;  // 0: not recorded (runs created before processes were)
  int64_t start_ticks = 0;
  std::string boot_id;
  std::string machine_id = {};  // /etc/machine-id; empty in runs recorded before it was
};

struct RunRecord {
  std::string id;
  RunInfo info;
  RunStatus status = RunStatus::kRunning;
  int64_t started_ms = 0;
  int64_t finished_ms = 0;      // 0 while running
  std::string error;            // why it failed, if it did
  RunProcess process = {};      // set by CreateRun
  std::string created_by = {};  // a server's token name, or USER@HOST; set by CreateRun
  // Why it ended, in one word (empty while running, or from an older tune): finished, pruned,
  // failed (its own error), interrupted (checkpointed on SIGTERM/SIGINT), cancelled, preempted,
  // time_limit, node_failure, out_of_memory, killed, heartbeat_lost, lost.
  std::string end_reason = {};
};

// Whether `run` says running but the process that would finish it has ended: killed with its
// sweep, out of memory, or the machine rebooted. Only a run made on this machine can be judged
// (a server's runs come from many): false for another machine's, for a Slurm job's (its trial
// outlives the driver that created the run), and when it cannot tell.
bool RunProcessEnded(const RunRecord& run);

struct MetricsAtStep {
  int64_t step = 0;
  std::map<std::string, double> values;
  bool operator==(const MetricsAtStep&) const = default;
};

// ---- People's judgement (DESIGN section 11) ----
//
// A review shows people the outputs of versions on the same prompts, two at a time, without
// saying which version wrote which, and keeps what they chose. Its prompts are a review set, a
// dataset version with its rows stored (DatasetRecord::content); its contestants are versions
// (NAME:N) and the base model they were trained from ("base"), each once its outputs on every
// prompt are recorded. Every judgement is kept with its rater (the token's name, or USER@HOST on
// a folder), its time, the pair and the order it was shown in.

inline constexpr std::string_view kBaseContestant = "base";

// One contestant's outputs on a review's prompts, as `tune review generate` made them.
struct ReviewOutputs {
  std::string contestant;  // NAME:N, or base
  // JSONL, one line per prompt in order: {"prompt": INDEX, "output": TEXT}.
  ManifestEntry object;
  std::string generation;  // how they were made: "greedy, seed 0, at most 64 new tokens, ..."
  int64_t created_ms = 0;
  std::string created_by;
};

struct ReviewRecord {
  std::string name;
  std::string set;  // the review set: a dataset version, NAME:N
  int64_t prompts = 0;
  // The base model every version in the review was trained from (its hash): versions of other
  // bases are refused, so that "base" names one model.
  std::string base_model_hash;
  std::vector<ReviewOutputs> outputs;  // in the order recorded
  int64_t created_ms = 0;
  std::string created_by;
  int64_t closed_ms = 0;  // 0 while open
  std::string closed_by;
};

// A prompt of a review set, as its content holds it.
struct ReviewPrompt {
  std::string prompt;
  std::string reference;  // empty when the set has none
};
// A review set's content: JSONL, one {"prompt": TEXT, "reference": TEXT} per line (reference
// optional). UserError naming `where`, the line and what is wrong.
std::vector<ReviewPrompt> ParseReviewSet(std::string_view jsonl, const std::string& where);

enum class Verdict { kLeft, kRight, kTie, kBothBad };
std::string_view VerdictName(Verdict verdict);                  // left, right, tie, both_bad
std::optional<Verdict> VerdictFromName(std::string_view name);  // nullopt for any other

// A pair as its rater sees it: one prompt and two outputs, without who wrote them.
struct BlindPair {
  int64_t id = 0;      // what a judgement names
  int64_t prompt = 0;  // its index in the review set
  std::string prompt_text;
  std::string reference;  // empty when the set has none
  std::string left;
  std::string right;
  int64_t judged = 0;     // pairs this rater has judged in the review
  int64_t remaining = 0;  // pairs this rater may still be shown, this one included
};

// A pair as the review keeps it: who was shown what, in which order, and what they chose.
struct ShownPair {
  int64_t id = 0;
  std::string rater;
  int64_t shown_ms = 0;
  int64_t prompt = 0;
  std::string left;  // contestants, as shown
  std::string right;
  std::optional<Verdict> verdict;  // nullopt until judged
  int64_t judged_ms = 0;
  std::string reason;
};

// What a review's judgements say of each contestant.
struct ContestantResult {
  std::string contestant;
  // Bradley-Terry rating (util/pairwise.h: Elo scale, ties half) with its 95% bootstrap interval.
  RatingInterval rating;
  int64_t judgements = 0;
  std::map<std::string, WinRate> against;  // other contestant -> how this one fared against it
};
struct ReviewResults {
  std::string review;
  bool closed = false;
  int64_t judgements = 0;
  int64_t raters = 0;
  int64_t resamples = 0;                      // of the bootstrap
  std::vector<ContestantResult> contestants;  // highest rating first
  Agreement agreement;  // Krippendorff's alpha over the pairs several raters judged
};

// A policy for moving one alias of one adapter, as a TOML file writes it:
//   [policy.production]
//   require = ["exact_match >= 0.80", "human.win_rate_vs_current >= 0.55", "human.judgements >=
//   30"] approvers = 1
// Each condition is METRIC OP NUMBER with OP one of >= > <= <. METRIC is a score of the version
// (exact_match) or one of the people's judgements, over every review the version is in:
//   human.win_rate_vs_current  its win rate (ties half) against the version the alias points at
//                              (the base model while the alias is unset)
//   human.win_rate_vs_base     its win rate against the base model
//   human.judgements           the judgements that win rate against the current version rests on
//   human.rating               its Bradley-Terry rating over all those reviews' judgements
// `approvers`: people with the promote role, other than the one who asked, who must approve.
struct AliasPolicy {
  std::string name;  // the adapter
  std::string alias;
  std::vector<std::string> require;
  int64_t approvers = 0;
  // Where it was written, for errors: the file, and the line of each condition (0: unknown).
  std::string source;
  std::vector<int64_t> lines;
  int64_t set_ms = 0;  // set by SetPolicy
  std::string set_by;
};

// The policies of `adapter` in a policy file's text: [policy.ALIAS] tables of `require` and
// `approvers`, each with `source` and the lines of its conditions. UserError naming `source`, the
// line and the key for anything else; SetPolicy checks the conditions themselves.
std::vector<AliasPolicy> ParsePolicies(std::string_view toml_text, const std::string& source,
                                       std::string_view adapter);

// How a version stands against one condition of a policy.
struct PolicyCheck {
  std::string condition;  // as written
  bool met = false;
  std::optional<double> value;  // the version's; nullopt when it has none
  std::string detail;           // one line: "0.74, 0.06 short"; "no judgements against rank:2 yet"
};

// A promotion that waits for approvers. Asked for when every condition was met; the move is made
// from the version the alias pointed at then, by the approval that completes it, if every
// condition is still met.
struct PromotionRequest {
  int64_t id = 0;  // 1, 2, ... per adapter
  std::string name;
  std::string alias;
  int64_t version = 0;
  int64_t from_version = 0;  // where the alias pointed when asked; 0: unset
  std::string requested_by;
  int64_t requested_ms = 0;
  int64_t approvers = 0;                 // needed, as the policy said when asked
  std::vector<std::string> approved_by;  // in order
  std::string status;                    // waiting, moved, or stale (the alias moved meanwhile)
  std::vector<PolicyCheck> checks;       // at the last look
};

// What a token may do on a registry server. Each role includes the ones before it.
enum class Role {
  kRead,     // browse and fetch
  kWrite,    // record runs, metrics, versions and datasets
  kPromote,  // move aliases
  kAdmin,    // gc, verify, backup, and tokens
};
std::string_view RoleName(Role role);                     // read, write, promote, admin
std::optional<Role> RoleFromName(std::string_view name);  // nullopt for any other

// A token of a registry server, as the registry keeps it: never the secret, only its SHA-256.
struct TokenInfo {
  std::string name;
  Role role = Role::kRead;
  int64_t created_ms = 0;
  std::string created_by;
  int64_t revoked_ms = 0;  // 0 while it works
  std::string revoked_by;
};

// How to reach a registry server, for a registry named by a URL. Empty fields are taken from the
// environment: $TUNE_TOKEN and $TUNE_CA_FILE.
struct RemoteAccess {
  std::string token;    // NAME.SECRET, as `tune serve token add` printed it
  std::string ca_file;  // PEM file of the CA that signed the server's certificate
};

class Registry {
 public:
  enum class OpenMode {
    kReadOnly,   // refuses writes; works while another process writes
    kReadWrite,  // the registry must exist
    kCreate,     // read-write, creating an empty registry when there is none (a folder only)
  };

  struct OpenOptions {
    // How long a write waits for another process's write to end before it fails with
    // RegistryBusy (a folder; a server waits as it was started to).
    std::chrono::milliseconds write_wait{60'000};
    RemoteAccess access;  // a URL
  };

  // `location`: a folder or an http:// or https:// URL. Throws UserError when there is no
  // registry there (a folder, except kCreate), its schema is newer, or (a URL) the server cannot
  // be reached (RegistryUnreachable) or refuses the token (RegistryDenied). A damaged registry
  // opens, so that Verify can say what is wrong; the calls that meet the damage throw
  // RegistryDamaged.
  static std::unique_ptr<Registry> Open(const std::string& location, OpenMode mode,
                                        const OpenOptions& options);
  static std::unique_ptr<Registry> Open(const std::string& location, OpenMode mode);
  // Whether `location` names a server rather than a folder.
  static bool IsUrl(std::string_view location);

  virtual ~Registry() = default;

  // How messages name it: the folder as given, or the server's URL.
  virtual const std::string& location() const = 0;
  virtual bool read_only() const = 0;

  // Stores every file under `artifact_dir` (identical bytes are kept once; a server is sent only
  // the ones it lacks), and `eval_samples` when given (a JSONL file of evaluation outputs), and
  // records the next version of `name` with `record`'s lineage. Versions start at 1 and are
  // never reused. Returns the version. A record with a run_id is registered once per run and
  // artifact: registering the same run's same files again (a retry) returns the version it
  // became. Files reach the disk before the record that names them, so a crash at any moment
  // leaves at worst unreferenced files (Gc removes them).
  virtual int64_t Register(std::string_view name, const VersionRecord& record,
                           const std::filesystem::path& artifact_dir,
                           const std::filesystem::path& eval_samples = {}) = 0;

  // The version a reference names. Unknown names get a "did you mean"; unknown versions and
  // aliases are listed.
  virtual VersionRecord Resolve(std::string_view ref) const = 0;
  virtual VersionRecord Get(std::string_view name, int64_t version) const = 0;

  virtual std::vector<std::string> Names() const = 0;  // sorted
  std::vector<VersionRecord> List(const ListOptions& options = {}) const;
  // The versions List would return from `offset` on, at most `limit` of them, and how many List
  // would return in all: a server's page without copying the rest.
  struct Page {
    std::vector<VersionRecord> versions;
    size_t total = 0;
  };
  virtual Page ListPage(const ListOptions& options, size_t offset, size_t limit) const = 0;
  virtual std::map<std::string, int64_t> Aliases(std::string_view name) const = 0;

  // Points `alias` of `name` at `version`, atomically. `expected`: nullopt moves it whatever it
  // points at; 0 requires it to be unset; N requires it to point at version N (AliasConflict
  // otherwise). Returns the version it pointed at before (0: unset). Every move is kept, with
  // who made it. Refuses `latest` (kLatestAlias, which always names the latest version) and
  // aliases that read as a version (v3). An alias with a policy (SetPolicy) moves only as
  // Promote and Approve move it; this refuses it (PolicyRefused) unless `override_reason` says
  // why the policy is set aside, which the move's history keeps (a server allows that to admins).
  virtual int64_t MoveAlias(std::string_view name, std::string_view alias, int64_t version,
                            std::optional<int64_t> expected = std::nullopt,
                            std::string_view override_reason = {}) = 0;
  virtual std::vector<AliasMove> History(std::string_view name) const = 0;  // oldest first

  // Writes the version's files and tune.json (its record) to `out_dir`, which must not exist or
  // be empty. Every byte is checked against its SHA-256 on the way; on any mismatch nothing is
  // left at `out_dir` and the error names the digest.
  virtual VersionRecord Fetch(std::string_view ref, const std::filesystem::path& out_dir) const = 0;
  // The bytes of a stored object, checked against its size and SHA-256 (RegistryDamaged naming
  // `what` and the digest when they differ or it is missing). For objects small enough to hold
  // in memory: evaluation outputs, dataset rows.
  virtual std::string ReadObject(const ManifestEntry& object, std::string_view what) const = 0;

  // Re-hashes every object and checks every reference between records, aliases and objects.
  virtual VerifyReport Verify() const = 0;
  // Removes objects no version refers to, and interrupted writes and uploads, older than
  // `grace`. Refuses (removing nothing) unless the scan that decides what is referenced read
  // every record.
  virtual GcReport Gc(std::chrono::seconds grace) = 0;
  // A consistent copy at `backup_dir` (which must not exist; on the server's machine for a URL)
  // that opens as a registry, verified once written: throws UserError naming the count and the
  // first problem when an object was missing or corrupted in the source (the copy is kept, whole
  // but for those). It is written as BACKUP_DIR.partial-XXXXXXXX and renamed when whole: an
  // interrupted backup leaves only that.
  virtual void Backup(const std::filesystem::path& backup_dir) const = 0;

  // Datasets: records the rows in `rows_file` (DatasetRecord::rows_object's format) as an object
  // and `record` as the next version of `name`, unless the latest version has the same sha256:
  // then returns that version and adds nothing. Returns the version. Refuses a record of no rows.
  // `content_file`, when given, is stored as the rows themselves (DatasetRecord::content).
  virtual int64_t RegisterDataset(std::string_view name, const DatasetRecord& record,
                                  const std::filesystem::path& rows_file,
                                  const std::filesystem::path& content_file = {}) = 0;
  // NAME (the latest version) or NAME:N; unknown names get a "did you mean".
  virtual DatasetRecord GetDataset(std::string_view ref) const = 0;
  virtual std::vector<DatasetRecord> ListDatasets() const = 0;  // by name, then version

  // Runs: what a trainer logs while it trains. Run ids are 16 hex digits. `id` empty: a new
  // one; given (a client that made it before it could reach the registry): the run with that id,
  // created once (a retried create returns it). The run records the process that called (its
  // machine's, for a server) as the one that finishes it (RunProcessEnded).
  virtual std::string CreateRun(const RunInfo& info, std::string_view id = {}) = 0;
  // Merges `values` into what step `step` already has. Buffers: a folder writes what it holds
  // when called 2 seconds or more after its last such write (if the registry is free then), a
  // server's client sends it from a thread of its own about once a second; both at FinishRun
  // and when the Registry is destroyed. Never waits for a disk or a network; a crash loses at
  // most what was logged since the last write or send. Reads through the same Registry see it.
  virtual void LogMetrics(std::string_view run_id, int64_t step,
                          const std::map<std::string, double>& values) = 0;
  // `end_reason`: RunRecord::end_reason's word; empty: the status's own (finished, failed, killed).
  virtual void FinishRun(std::string_view run_id, RunStatus status, std::string_view error = "",
                         std::string_view end_reason = "") = 0;
  virtual RunRecord GetRun(std::string_view run_id) const = 0;
  virtual std::vector<RunRecord> ListRuns() const = 0;                                  // oldest
  virtual std::vector<MetricsAtStep> GetRunMetrics(std::string_view run_id) const = 0;  // by step

  // Reviews (DESIGN section 11). CreateReview: a new open review of the prompts of the dataset
  // version `set` (NAME or NAME:N, which must hold its rows: a review set).
  virtual void CreateReview(std::string_view name, std::string_view set) = 0;
  virtual ReviewRecord GetReview(std::string_view name) const = 0;
  virtual std::vector<ReviewRecord> ListReviews() const = 0;  // by name
  // Records `outputs_file` (ReviewOutputs::object's format, one line for every prompt of the
  // set) as `contestant`'s outputs: a version of the review's base model (NAME:N), or base. A
  // contestant's outputs are recorded once: the same bytes again add nothing, others are refused.
  virtual void AddReviewOutputs(std::string_view review, std::string_view contestant,
                                const std::filesystem::path& outputs_file,
                                std::string_view generation) = 0;
  // The next pair for the caller (the rater: a server's token, or USER@HOST) to judge, recorded
  // as shown to them: the pair they were shown and have not judged yet, else the most informative
  // one (contestants with the fewest judgements between them and the closest ratings first)
  // that they have not been shown, left and right in random order. nullopt when none is left.
  virtual std::optional<BlindPair> NextPair(std::string_view review) = 0;
  // The caller's judgement of a pair they were shown. Refuses a pair not shown to them, one
  // they judged already, and a closed review. `reason`: at most 1,000 bytes.
  virtual void Judge(std::string_view review, int64_t pair, Verdict verdict,
                     std::string_view reason = {}) = 0;
  // Ends the review: no more pairs or judgements, and which contestant wrote what is shown.
  virtual void CloseReview(std::string_view review) = 0;
  virtual ReviewResults Results(std::string_view review) const = 0;
  // Every pair shown, with its contestants and judgement: refused while the review is open.
  virtual std::vector<ShownPair> Judgements(std::string_view review) const = 0;

  // Promotion policies: set (replacing the alias's policy; unknown metrics and malformed
  // conditions refused, naming the policy's source, line and key), removed, listed by alias.
  virtual void SetPolicy(const AliasPolicy& policy) = 0;
  virtual void RemovePolicy(std::string_view name, std::string_view alias) = 0;
  virtual std::vector<AliasPolicy> Policies(std::string_view name) const = 0;
  // How `version` stands against the policy of `alias` (empty: the alias has none).
  virtual std::vector<PolicyCheck> CheckPolicy(std::string_view name, std::string_view alias,
                                               int64_t version) const = 0;
  // Moves `alias` to `version` as its policy allows: at once when it has no policy, or when every
  // condition is met and it needs no approver; otherwise, with every condition met, as a request
  // that waits for approvers (asking again for the same move returns it). PolicyRefused names each
  // failing condition and by how much. `expected` as MoveAlias's.
  virtual PromotionRequest Promote(std::string_view name, std::string_view alias, int64_t version,
                                   std::optional<int64_t> expected = std::nullopt) = 0;
  // The caller's approval of a waiting request (not their own; once each). The approval that
  // completes it moves the alias if every condition still holds (PolicyRefused otherwise; the
  // request waits on) and the alias has not moved since it was asked (AliasConflict; stale).
  virtual PromotionRequest Approve(std::string_view name, int64_t request) = 0;
  virtual std::vector<PromotionRequest> PromotionRequests(std::string_view name) const = 0;

  // Tokens of a registry server (kept in its registry; a folder keeps them for the server that
  // serves it). AddToken returns the token, NAME.SECRET: the only time the secret is shown.
  virtual std::string AddToken(std::string_view name, Role role) = 0;
  virtual std::vector<TokenInfo> ListTokens() const = 0;  // by name
  virtual void RevokeToken(std::string_view name) = 0;
};

}  // namespace tune
