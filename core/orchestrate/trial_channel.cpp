#include "orchestrate/trial_channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>

#include <nlohmann/json.hpp>

#include "registry/record_json.h"
#include "util/echo.h"

namespace tune {
namespace {

using json = nlohmann::json;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json Parse(std::string_view line) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    throw UserError("unreadable message on the trial channel: '" + Echo(line, 80) + "'");
  }
  return j;
}

UserError Unknown(std::string_view line) {
  return UserError("unexpected message on the trial channel: '" + Echo(line, 80) +
                   "' (a tune train and tune sweep of different versions?)");
}

json RegisterJson(const TrackedVersion& v) {
  json dataset = nullptr;
  if (v.dataset) {
    dataset = {{"name", v.dataset->name},
               {"record", json::parse(DatasetRecordToJson(v.dataset->record))},
               {"rows_file", v.dataset->rows_file.string()}};
  }
  return {{"type", "register"},
          {"name", v.name},
          {"record", json::parse(VersionRecordToJson(v.record))},
          {"artifact_dir", v.artifact_dir.string()},
          {"eval_samples", v.eval_samples.string()},
          {"dataset", dataset}};
}

TrackedVersion RegisterFromJson(const json& j) {
  TrackedVersion v;
  v.name = j.at("name").get<std::string>();
  v.record = VersionRecordFromJson(j.at("record").dump());
  v.artifact_dir = j.at("artifact_dir").get<std::string>();
  v.eval_samples = j.at("eval_samples").get<std::string>();
  if (const json& dataset = j.at("dataset"); !dataset.is_null()) {
    v.dataset = TrackedDataset{dataset.at("name").get<std::string>(),
                               DatasetRecordFromJson(dataset.at("record").dump()),
                               dataset.at("rows_file").get<std::string>()};
  }
  return v;
}

json TrialJson(const TrialMessage& message) {
  return std::visit(
      Overloaded{[](const TrialPrepared&) {
                   return json{{"type", "prepared"}};
                 },
                 [](const StepReport& m) {
                   return json{{"type", "step"},
                               {"step", m.step},
                               {"total_steps", m.total_steps},
                               {"loss", m.loss},
                               {"lr", m.lr},
                               {"grad_norm", m.grad_norm},
                               {"tokens_per_second", m.tokens_per_second},
                               {"elapsed_seconds", m.elapsed_seconds}};
                 },
                 [](const TrialEvaluated& m) {
                   return json{{"type", "evaluated"}, {"step", m.step}, {"eval_loss", m.eval_loss}};
                 },
                 [](const TrialDone& m) {
                   return json{{"type", "done"},
                               {"version", m.version},
                               {"scores", m.scores},
                               {"base_scores", m.base_scores},
                               {"wall_seconds", m.wall_seconds},
                               {"few_shot_scores", m.few_shot_scores}};
                 },
                 [](const TrackerCreateRun& m) {
                   return json{{"type", "create_run"},
                               {"name", m.info.name},
                               {"sweep", m.info.sweep ? json(*m.info.sweep) : json(nullptr)},
                               {"trial", m.info.trial ? json(*m.info.trial) : json(nullptr)},
                               {"config_toml", m.info.config_toml},
                               {"params", ParamsToJson(m.info.params)},
                               {"node", m.info.node},
                               {"job", m.info.job}};
                 },
                 [](const TrackerLogMetrics& m) {
                   json steps = json::array();
                   for (const MetricsAtStep& step : m.steps)
                     steps.push_back({step.step, step.values});
                   return json{{"type", "log_metrics"}, {"run_id", m.run_id}, {"steps", steps}};
                 },
                 [](const TrackerRegister& m) { return RegisterJson(m.version); },
                 [](const TrackerFinishRun& m) {
                   return json{{"type", "finish_run"},
                               {"run_id", m.run_id},
                               {"status", RunStatusName(m.status)},
                               {"error", m.error},
                               {"end_reason", m.end_reason}};
                 },
                 [](const TrialHeartbeat&) {
                   return json{{"type", "heartbeat"}};
                 }},
      message);
}

std::optional<TrialMessage> TrialFromJson(const json& j) {
  const std::string type = j["type"];
  if (type == "prepared") return TrialPrepared{};
  if (type == "step") {
    return StepReport{j.at("step").get<int64_t>(),          j.at("total_steps").get<int64_t>(),
                      j.at("loss").get<double>(),           j.at("lr").get<double>(),
                      j.at("grad_norm").get<double>(),      j.at("tokens_per_second").get<double>(),
                      j.at("elapsed_seconds").get<double>()};
  }
  if (type == "evaluated") {
    return TrialEvaluated{j.at("step").get<int64_t>(), j.at("eval_loss").get<double>()};
  }
  if (type == "done") {
    return TrialDone{
        j.at("version").get<int64_t>(), j.at("scores").get<std::map<std::string, double>>(),
        j.at("base_scores").get<std::map<std::string, double>>(),
        j.at("wall_seconds").get<double>(),
        j.value("few_shot_scores", nlohmann::json::object()).get<std::map<std::string, double>>()};
  }
  if (type == "create_run") {
    RunInfo info;
    info.name = j.at("name").get<std::string>();
    if (!j.at("sweep").is_null()) info.sweep = j["sweep"].get<std::string>();
    if (!j.at("trial").is_null()) info.trial = j["trial"].get<int64_t>();
    info.config_toml = j.at("config_toml").get<std::string>();
    info.params = ParamsFromJson(j.value("params", json::object()));
    info.node = j.value("node", "");
    info.job = j.value("job", "");
    return TrackerCreateRun{std::move(info)};
  }
  if (type == "log_metrics") {
    TrackerLogMetrics m{j.at("run_id").get<std::string>(), {}};
    for (const json& step : j.at("steps")) {
      m.steps.push_back(
          {step.at(0).get<int64_t>(), step.at(1).get<std::map<std::string, double>>()});
    }
    return m;
  }
  if (type == "register") return TrackerRegister{RegisterFromJson(j)};
  if (type == "finish_run") {
    const std::optional<RunStatus> status = RunStatusFromName(j.at("status").get<std::string>());
    if (!status) return std::nullopt;
    return TrackerFinishRun{j.at("run_id").get<std::string>(), *status,
                            j.at("error").get<std::string>(), j.value("end_reason", "")};
  }
  if (type == "heartbeat") return TrialHeartbeat{};
  return std::nullopt;
}

json DriverJson(const DriverMessage& message) {
  return std::visit(
      Overloaded{[](const TrialGo& m) {
                   return json{{"type", "go"},
                               {"sweep", m.sweep},
                               {"trial", m.trial},
                               {"configuration", m.configuration},
                               {"parameters", ParamsToJson(m.parameters)},
                               {"base_model_sha256", m.base_model_sha256},
                               {"registry", m.registry},
                               {"attempt", m.attempt}};
                 },
                 [](const TrialVerdict& m) {
                   return json{{"type", "verdict"}, {"go_on", m.go_on}, {"reason", m.reason}};
                 },
                 [](const TrackerReply& m) {
                   return json{{"type", "reply"},
                               {"run_id", m.run_id},
                               {"version", m.version},
                               {"error", m.error}};
                 }},
      message);
}

std::optional<DriverMessage> DriverFromJson(const json& j) {
  const std::string type = j["type"];
  if (type == "go") {
    return TrialGo{j.at("sweep").get<std::string>(),
                   j.at("trial").get<int64_t>(),
                   j.at("configuration").get<int64_t>(),
                   ParamsFromJson(j.at("parameters")),
                   j.at("base_model_sha256").get<std::string>(),
                   j.at("registry").get<std::string>(),
                   j.value("attempt", int64_t{1})};
  }
  if (type == "verdict") {
    return TrialVerdict{j.at("go_on").get<bool>(), j.at("reason").get<std::string>()};
  }
  if (type == "reply") {
    return TrackerReply{j.at("run_id").get<std::string>(), j.at("version").get<int64_t>(),
                        j.at("error").get<std::string>()};
  }
  return std::nullopt;
}

// Decodes one line with `from_json`; anything that is not such a message is refused naming it.
template <typename Message, typename FromJson>
Message Decode(std::string_view line, FromJson from_json) {
  const json j = Parse(line);
  std::optional<Message> message;
  try {
    message = from_json(j);
  } catch (const json::exception&) {
  } catch (const UserError&) {  // a record inside that does not read as one
  }
  if (!message) throw Unknown(line);
  return std::move(*message);
}

}  // namespace

std::string EncodeTrialMessage(const TrialMessage& message) { return Dump(TrialJson(message)); }

std::string EncodeDriverMessage(const DriverMessage& message) { return Dump(DriverJson(message)); }

TrialMessage DecodeTrialMessage(std::string_view line) {
  return Decode<TrialMessage>(line, TrialFromJson);
}

DriverMessage DecodeDriverMessage(std::string_view line) {
  return Decode<DriverMessage>(line, DriverFromJson);
}

TrialChannel::TrialChannel(int fd) : fd_(fd) {}

TrialChannel::~TrialChannel() {
  if (fd_ >= 0) close(fd_);
}

void TrialChannel::Send(const TrialMessage& message) { SendLine(EncodeTrialMessage(message)); }

void TrialChannel::Send(const DriverMessage& message) { SendLine(EncodeDriverMessage(message)); }

void TrialChannel::SendLine(std::string line) {
  line += '\n';
  const std::lock_guard lock(send_mutex_);
  size_t sent = 0;
  while (sent < line.size()) {
    // MSG_NOSIGNAL: a closed peer is an error here, not SIGPIPE.
    const ssize_t n = send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw ChannelClosed("the other end of the trial channel has gone");
    sent += static_cast<size_t>(n);
  }
}

bool TrialChannel::Fill(bool wait) {
  char chunk[4096];
  while (true) {
    const ssize_t n = recv(fd_, chunk, sizeof(chunk), wait ? 0 : MSG_DONTWAIT);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      last_heard_ = std::chrono::steady_clock::now();
      return true;
    }
    if (n < 0 && errno == EINTR) continue;
    // Waiting, this is a receive timeout (remote_channel.h): the other end has gone silent.
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return !wait;
    return false;  // end of stream, or the socket failed
  }
}

DriverMessage TrialChannel::ReceiveFromDriver() {
  size_t end;
  while ((end = buffer_.find('\n')) == std::string::npos) {
    if (!Fill(/*wait=*/true)) throw ChannelClosed("the driver closed the trial channel");
  }
  const std::string line = buffer_.substr(0, end);
  buffer_.erase(0, end + 1);
  return DecodeDriverMessage(line);
}

std::vector<TrialMessage> TrialChannel::TakeTrialMessages() {
  std::vector<TrialMessage> messages;
  if (closed_) return messages;
  bool open = true;
  while (open) {
    const size_t before = buffer_.size();
    open = Fill(/*wait=*/false);
    if (buffer_.size() == before) break;
  }
  size_t end;
  while ((end = buffer_.find('\n')) != std::string::npos) {
    const std::string line = buffer_.substr(0, end);
    buffer_.erase(0, end + 1);
    messages.push_back(DecodeTrialMessage(line));
  }
  if (!open) closed_ = true;
  return messages;
}

namespace {

DriverLost DriverGone() {
  return DriverLost("the sweep that started this trial has ended; resume the sweep with --resume");
}

// The trial's tracker calls, carried out by the driver. Used by the trial's one thread.
class DriverTracker : public Tracker {
 public:
  DriverTracker(TrialChannel& driver, std::string location)
      : driver_(driver), location_(std::move(location)) {}

  std::string CreateRun(const RunInfo& info) override {
    return Call(TrackerCreateRun{info}).run_id;
  }

  void LogMetrics(std::string_view run_id, int64_t step,
                  const std::map<std::string, double>& values) override {
    std::map<std::string, double>& merged = pending_[std::string(run_id)][step];
    for (const auto& [name, value] : values) merged[name] = value;
    if (std::chrono::steady_clock::now() - last_sent_ >= kStepReportInterval) SendPending();
  }

  int64_t Register(TrackedVersion version) override {
    SendPending();
    return Call(TrackerRegister{std::move(version)}).version;
  }

  void FinishRun(std::string_view run_id, RunStatus status, std::string_view error,
                 std::string_view end_reason) override {
    SendPending();
    Call(
        TrackerFinishRun{std::string(run_id), status, std::string(error), std::string(end_reason)});
  }

  std::string location() const override { return location_; }

 private:
  TrackerReply Call(const TrialMessage& request) {
    TellDriver(driver_, request);
    TrackerReply reply = AwaitDriver<TrackerReply>(driver_);
    if (!reply.error.empty()) throw UserError(reply.error);
    return reply;
  }

  void SendPending() {
    last_sent_ = std::chrono::steady_clock::now();
    for (auto& [run_id, steps] : pending_) {
      TrackerLogMetrics message{run_id, {}};
      for (auto& [step, values] : steps) message.steps.push_back({step, std::move(values)});
      TellDriver(driver_, message);
    }
    pending_.clear();
  }

  TrialChannel& driver_;
  std::string location_;
  std::map<std::string, std::map<int64_t, std::map<std::string, double>>> pending_;
  std::chrono::steady_clock::time_point last_sent_ = std::chrono::steady_clock::now();
};

}  // namespace

void TellDriver(TrialChannel& driver, const TrialMessage& message) {
  try {
    driver.Send(message);
  } catch (const ChannelClosed&) {
    throw DriverGone();
  }
}

template <typename Message>
Message AwaitDriver(TrialChannel& driver) {
  std::optional<DriverMessage> message;
  try {
    message = driver.ReceiveFromDriver();
  } catch (const ChannelClosed&) {
    throw DriverGone();
  }
  if (auto* wanted = std::get_if<Message>(&*message)) return std::move(*wanted);
  throw UserError("the sweep sent a message out of turn (" + EncodeDriverMessage(*message) +
                  "); are tune sweep and its trials the same tune?");
}

template TrialGo AwaitDriver<TrialGo>(TrialChannel&);
template TrialVerdict AwaitDriver<TrialVerdict>(TrialChannel&);
template TrackerReply AwaitDriver<TrackerReply>(TrialChannel&);

std::unique_ptr<Tracker> MakeDriverTracker(TrialChannel& driver, std::string location) {
  return std::make_unique<DriverTracker>(driver, std::move(location));
}

}  // namespace tune
