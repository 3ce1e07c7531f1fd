// The channel between a running trial (`tune train --channel-fd N`) and the driver that started
// it (`tune sweep`): one stream socket, one JSON object per line each way, each with a "type".
// Both sides include this header; nothing else defines the protocol.
//
// The conversation, trial first:
//   trial  -> prepared   plugins, model and data are loaded; the trial waits for go
//   driver -> go         train now; says which sweep, trial and configuration this is
//   trial  -> step       progress: the first step, then at most one per kStepReportInterval,
//                        and the last
//   trial  -> evaluated  after every intermediate eval; the trial waits for a verdict
//   driver -> verdict    go on, or stop here (early stopping), with the reason the run records
//   trial  -> done       registered: the version and its scores; then the trial exits 0
//   trial  -> heartbeat  at any time, from a trial on another machine (remote_channel.h), so
//                        that its driver can tell a silent trial from a busy one
// and, whenever the trial records something, its tracker's calls (orchestrate/tracker.h), which
// the driver carries out in its own tracker, so that one process holds the registry for all:
//   trial  -> create_run, register, finish_run   each answered by the driver's reply
//   trial  -> log_metrics                        the steps since the last, not answered
// A trial resumed after it had registered sends done alone. A trial told to stop finishes its run
// and exits 0 without done. Anything else that ends the process is a failure the driver reads from
// the exit status. Over TCP the conversation starts with remote_channel.h's handshake. No libtorch.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "orchestrate/tracker.h"
#include "registry/registry.h"
#include "train/trainer.h"  // StepReport
#include "util/error.h"

namespace tune {

struct TrialPrepared {
  bool operator==(const TrialPrepared&) const = default;
};

struct TrialEvaluated {
  int64_t step = 0;
  double eval_loss = 0.0;
  bool operator==(const TrialEvaluated&) const = default;
};

struct TrialDone {
  int64_t version = 0;
  std::map<std::string, double> scores;
  std::map<std::string, double> base_scores;
  double wall_seconds = 0.0;                      // the trial's own, waiting for go left out
  std::map<std::string, double> few_shot_scores;  // the prompted base model's ([eval] few_shot)
  bool operator==(const TrialDone&) const = default;
};

// A fast trial would otherwise wake its driver at every step and take the cores it trains on.
inline constexpr std::chrono::milliseconds kStepReportInterval{500};

struct TrialHeartbeat {
  bool operator==(const TrialHeartbeat&) const = default;
};

// The tracker's calls, as the trial makes them.
struct TrackerCreateRun {
  RunInfo info;
  bool operator==(const TrackerCreateRun&) const = default;
};

struct TrackerLogMetrics {
  std::string run_id;
  std::vector<MetricsAtStep> steps;
  bool operator==(const TrackerLogMetrics&) const = default;
};

struct TrackerRegister {
  TrackedVersion version;
  bool operator==(const TrackerRegister&) const = default;
};

struct TrackerFinishRun {
  std::string run_id;
  RunStatus status = RunStatus::kFinished;
  std::string error;
  std::string end_reason;  // RunRecord::end_reason
  bool operator==(const TrackerFinishRun&) const = default;
};

// "step" carries the trainer's StepReport as it is.
using TrialMessage =
    std::variant<TrialPrepared, StepReport, TrialEvaluated, TrialDone, TrackerCreateRun,
                 TrackerLogMetrics, TrackerRegister, TrackerFinishRun, TrialHeartbeat>;

// What a driver tells its trial when it lets it train: the lineage the trial records.
struct TrialGo {
  std::string sweep;          // <sweep name>-<N>
  int64_t trial = 0;          // 1-based
  int64_t configuration = 0;  // 1-based; the trials of one configuration differ only in train.seed
  std::map<std::string, ParamValue> parameters;  // the configuration's swept values
  // ModelDirectorySha256 of the base model, computed once by the driver for all its trials (empty:
  // the trial computes it).
  std::string base_model_sha256;
  std::string registry;  // where the driver's tracker records (Tracker::location)
  int64_t attempt = 1;   // 1-based: a trial retried after a lost node or a preemption is on 2, 3...
  bool operator==(const TrialGo&) const = default;
};

struct TrialVerdict {
  bool go_on = true;
  std::string reason;  // why it stops: "pruned at step 20 (eval_loss 1.2345)"
  bool operator==(const TrialVerdict&) const = default;
};

// The answer to create_run (run_id), register (version) and finish_run; `error` is the tracker's
// refusal, which the trial's call throws as a UserError.
struct TrackerReply {
  std::string run_id;
  int64_t version = 0;
  std::string error;
  bool operator==(const TrackerReply&) const = default;
};

using DriverMessage = std::variant<TrialGo, TrialVerdict, TrackerReply>;

// One line each, without the newline. Decoding throws UserError naming the line for anything that
// is not a message of that direction.
std::string EncodeTrialMessage(const TrialMessage& message);
std::string EncodeDriverMessage(const DriverMessage& message);
TrialMessage DecodeTrialMessage(std::string_view line);
DriverMessage DecodeDriverMessage(std::string_view line);

// The other end closed the channel, or it failed.
class ChannelClosed : public UserError {
 public:
  using UserError::UserError;
};

// The trial's side: its driver has gone (TellDriver, AwaitDriver, a driver tracker's calls).
class DriverLost : public UserError {
 public:
  using UserError::UserError;
};

// One end of a channel. Owns its descriptor and closes it. Used by one thread, except that Send
// may also be called from a second one (a trial's heartbeat): each line goes out whole.
class TrialChannel {
 public:
  explicit TrialChannel(int fd);
  ~TrialChannel();
  TrialChannel(const TrialChannel&) = delete;
  TrialChannel& operator=(const TrialChannel&) = delete;

  int fd() const { return fd_; }

  // Blocking writes of one message. Throw ChannelClosed when the other end is gone.
  void Send(const TrialMessage& message);
  void Send(const DriverMessage& message);

  // The trial's side: waits for the driver's next message. Throws ChannelClosed at end of stream,
  // UserError for an unreadable line.
  DriverMessage ReceiveFromDriver();

  // The driver's side, without waiting: every whole message that has arrived. closed() turns true
  // once the trial's end is closed and everything before it was taken.
  std::vector<TrialMessage> TakeTrialMessages();
  bool closed() const { return closed_; }
  // When bytes last arrived (or the channel was made): what a heartbeat timeout measures.
  std::chrono::steady_clock::time_point last_heard() const { return last_heard_; }

  // One raw line, for remote_channel.h's handshake, which comes before any message.
  void SendLine(std::string line);

 private:
  // Reads what is there (waiting for some when `wait`) into buffer_; false at end of stream.
  bool Fill(bool wait);

  int fd_;
  std::string buffer_;
  bool closed_ = false;
  std::chrono::steady_clock::time_point last_heard_ = std::chrono::steady_clock::now();
  std::mutex send_mutex_;
};

// The trial's side, where a channel that closes means the driver has gone: these throw DriverLost
// saying so (and to resume the sweep) rather than ChannelClosed.
void TellDriver(TrialChannel& driver, const TrialMessage& message);
// The driver's next message, which must be a `Message`.
template <typename Message>
Message AwaitDriver(TrialChannel& driver);

// A Tracker whose calls the driver carries out (its replies and refusals come back on the
// channel). LogMetrics sends what it holds at most once per kStepReportInterval, and all of it
// before register and finish_run. `location` is the driver's (TrialGo::registry).
std::unique_ptr<Tracker> MakeDriverTracker(TrialChannel& driver, std::string location);

}  // namespace tune
