#include "orchestrate/trial_channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <nlohmann/json.hpp>

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

}  // namespace

std::string EncodeTrialMessage(const TrialMessage& message) {
  return Dump(std::visit(
      Overloaded{[](const TrialPrepared&) {
                   return json{{"type", "prepared"}};
                 },
                 [](const TrialStarted& m) {
                   return json{{"type", "started"}, {"run_id", m.run_id}};
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
                               {"wall_seconds", m.wall_seconds}};
                 }},
      message));
}

std::string EncodeDriverMessage(const DriverMessage& message) {
  return Dump(std::visit(
      Overloaded{[](const TrialGo& m) {
                   return json{{"type", "go"},
                               {"sweep", m.sweep},
                               {"trial", m.trial},
                               {"configuration", m.configuration},
                               {"parameters", m.parameters},
                               {"base_model_sha256", m.base_model_sha256}};
                 },
                 [](const TrialVerdict& m) {
                   return json{{"type", "verdict"}, {"go_on", m.go_on}, {"reason", m.reason}};
                 }},
      message));
}

TrialMessage DecodeTrialMessage(std::string_view line) {
  const json j = Parse(line);
  const std::string type = j["type"];
  try {
    if (type == "prepared") return TrialPrepared{};
    if (type == "started") return TrialStarted{j.at("run_id").get<std::string>()};
    if (type == "step") {
      return StepReport{
          j.at("step").get<int64_t>(),          j.at("total_steps").get<int64_t>(),
          j.at("loss").get<double>(),           j.at("lr").get<double>(),
          j.at("grad_norm").get<double>(),      j.at("tokens_per_second").get<double>(),
          j.at("elapsed_seconds").get<double>()};
    }
    if (type == "evaluated") {
      return TrialEvaluated{j.at("step").get<int64_t>(), j.at("eval_loss").get<double>()};
    }
    if (type == "done") {
      return TrialDone{j.at("version").get<int64_t>(),
                       j.at("scores").get<std::map<std::string, double>>(),
                       j.at("base_scores").get<std::map<std::string, double>>(),
                       j.at("wall_seconds").get<double>()};
    }
  } catch (const json::exception&) {
    throw Unknown(line);
  }
  throw Unknown(line);
}

DriverMessage DecodeDriverMessage(std::string_view line) {
  const json j = Parse(line);
  const std::string type = j["type"];
  try {
    if (type == "go") {
      return TrialGo{j.at("sweep").get<std::string>(), j.at("trial").get<int64_t>(),
                     j.at("configuration").get<int64_t>(), j.at("parameters").get<std::string>(),
                     j.at("base_model_sha256").get<std::string>()};
    }
    if (type == "verdict") {
      return TrialVerdict{j.at("go_on").get<bool>(), j.at("reason").get<std::string>()};
    }
  } catch (const json::exception&) {
    throw Unknown(line);
  }
  throw Unknown(line);
}

TrialChannel::TrialChannel(int fd) : fd_(fd) {}

TrialChannel::~TrialChannel() {
  if (fd_ >= 0) close(fd_);
}

void TrialChannel::Send(const TrialMessage& message) { SendLine(EncodeTrialMessage(message)); }

void TrialChannel::Send(const DriverMessage& message) { SendLine(EncodeDriverMessage(message)); }

void TrialChannel::SendLine(std::string line) {
  line += '\n';
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
      return true;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
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

}  // namespace tune
