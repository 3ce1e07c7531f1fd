// The trial channel: every message reads back as written, junk is refused with one line, and the
// two ends pass whole messages over a real socket whatever the reads split.
#include "orchestrate/trial_channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

namespace tune {
namespace {

// A version as a trial registers it: the record and where its files are.
TrackedVersion Version() {
  TrackedVersion v;
  v.name = "rank";
  v.record.method = "lora";
  v.record.params = {{"adapter.rank", int64_t{4}}, {"optimizer.lr", 0.001}};
  v.record.config_toml = "[adapter]\nrank = 4\n";
  v.record.scores = {{"exact_match", 0.5}};
  v.record.sweep = "rank-2";
  v.record.trial = 3;
  v.record.configuration = 2;
  v.record.run_id = "0123456789abcdef";
  v.artifact_dir = "/runs/trial-003/adapter";
  v.eval_samples = "/runs/trial-003/eval_samples.jsonl";
  DatasetRecord dataset;
  dataset.sha256 = std::string(64, 'd');
  dataset.rows = 80;
  v.dataset = TrackedDataset{"data", dataset, "/runs/trial-003/dataset_rows.txt"};
  return v;
}

TEST(TrialChannel, EveryMessageReadsBackAsWritten) {
  const std::vector<TrialMessage> trial_messages = {
      TrialPrepared{},
      StepReport{3, 30, 1.25, 2e-4, 0.5, 1234.5, 0.75},
      TrialEvaluated{10, 1.125},
      TrialDone{4,
                {{"exact_match", 0.5}, {"eval_loss", 1.0}},
                {{"exact_match", 0.0}},
                12.5,
                {{"exact_match", 0.25}}},
      TrackerCreateRun{{"rank", "rank-2", 3, "[train]\nsteps = 10\n"}},
      TrackerCreateRun{{"alone", std::nullopt, std::nullopt, ""}},
      TrackerCreateRun{[] {
        RunInfo info{"rank", "rank-2", 3, ""};
        info.node = "node7";
        info.job = "1234_3";
        return info;
      }()},
      TrialHeartbeat{},
      TrackerLogMetrics{"0123456789abcdef", {{1, {{"loss", 2.5}}}, {2, {{"loss", 2.25}}}}},
      TrackerRegister{Version()},
      TrackerFinishRun{"0123456789abcdef", RunStatus::kKilled, "pruned at step 5", "pruned"}};
  for (const TrialMessage& message : trial_messages) {
    const std::string line = EncodeTrialMessage(message);
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    EXPECT_EQ(DecodeTrialMessage(line), message) << line;
  }
  const std::vector<DriverMessage> driver_messages = {
      TrialGo{"rank-2",
              3,
              2,
              {{"adapter.rank", int64_t{4}}, {"optimizer.lr", 0.001}},
              "ab12",
              ".tune/registry",
              2},
      TrialVerdict{true, ""}, TrialVerdict{false, "pruned at step 5 (eval_loss 2.0000)"},
      TrackerReply{"0123456789abcdef", 0, ""}, TrackerReply{"", 7, "registry is full"}};
  for (const DriverMessage& message : driver_messages) {
    const std::string line = EncodeDriverMessage(message);
    EXPECT_EQ(DecodeDriverMessage(line), message) << line;
  }
}

TEST(TrialChannel, RefusesLinesThatAreNotMessagesOfItsDirection) {
  EXPECT_THROW(DecodeTrialMessage("not json"), UserError);
  EXPECT_THROW(DecodeTrialMessage("{\"step\": 3}"), UserError);                      // no type
  EXPECT_THROW(DecodeTrialMessage("{\"type\": \"step\", \"step\": 3}"), UserError);  // fields
  try {
    DecodeTrialMessage(EncodeDriverMessage(TrialVerdict{true, ""}));
    FAIL() << "a driver's message read as a trial's";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()).find("unexpected message on the trial channel: "
                                         "'{\"go_on\":true,\"reason\":\"\",\"type\":\"verdict\"}'"),
              0u)
        << e.what();
  }
  EXPECT_THROW(DecodeDriverMessage(EncodeTrialMessage(TrialPrepared{})), UserError);
}

TEST(TrialChannel, PassesWholeMessagesBetweenTheTwoEndsOfASocket) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  TrialChannel driver(fds[0]);
  {
    TrialChannel trial(fds[1]);
    EXPECT_TRUE(driver.TakeTrialMessages().empty());  // nothing yet, and it does not wait
    trial.Send(TrialPrepared{});
    trial.Send(TrialEvaluated{5, 2.5});
    EXPECT_EQ(driver.TakeTrialMessages(),
              (std::vector<TrialMessage>{TrialPrepared{}, TrialEvaluated{5, 2.5}}));
    // Half a line is held until the rest arrives.
    const std::string line = EncodeTrialMessage(TrialEvaluated{20, 1.5}) + "\n";
    ASSERT_EQ(send(fds[1], line.data(), 5, 0), 5);
    EXPECT_TRUE(driver.TakeTrialMessages().empty());
    ASSERT_EQ(send(fds[1], line.data() + 5, line.size() - 5, 0),
              static_cast<ssize_t>(line.size() - 5));
    EXPECT_EQ(driver.TakeTrialMessages(), (std::vector<TrialMessage>{TrialEvaluated{20, 1.5}}));

    driver.Send(TrialVerdict{false, "stop"});
    EXPECT_EQ(trial.ReceiveFromDriver(), DriverMessage(TrialVerdict{false, "stop"}));
    trial.Send(TrialDone{1, {}, {}, 0.0, {}});
  }  // the trial's end closes
  EXPECT_EQ(driver.TakeTrialMessages(), (std::vector<TrialMessage>{TrialDone{1, {}, {}, 0.0, {}}}));
  EXPECT_TRUE(driver.closed());
  EXPECT_THROW(driver.Send(TrialGo{}), ChannelClosed);
}

// A driven trial's tracker: each call is carried out by the driver, metrics go ahead of the call
// that follows them, and the driver's refusal is the call's error.
TEST(TrialChannel, ADriverTrackersCallsAreAnsweredByTheDriver) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  TrialChannel trial_end(fds[1]);
  std::vector<TrialMessage> seen;
  std::thread driver([&, fd = fds[0]] {
    TrialChannel channel(fd);
    while (!channel.closed()) {
      for (TrialMessage& message : channel.TakeTrialMessages()) {
        if (std::holds_alternative<TrackerCreateRun>(message)) {
          channel.Send(TrackerReply{"00000000000000aa", 0, ""});
        } else if (std::holds_alternative<TrackerRegister>(message)) {
          channel.Send(TrackerReply{"", 0, "registry at r is full; free some space"});
        }
        seen.push_back(std::move(message));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  {
    const std::unique_ptr<Tracker> tracker = MakeDriverTracker(trial_end, "r");
    EXPECT_EQ(tracker->location(), "r");
    EXPECT_EQ(tracker->CreateRun({"rank", std::nullopt, std::nullopt, ""}), "00000000000000aa");
    tracker->LogMetrics("00000000000000aa", 1, {{"loss", 2.0}});
    tracker->LogMetrics("00000000000000aa", 1, {{"lr", 0.1}});
    try {
      tracker->Register(Version());
      FAIL() << "the driver's refusal was not thrown";
    } catch (const UserError& e) {
      EXPECT_EQ(std::string(e.what()), "registry at r is full; free some space");
    }
  }
  shutdown(fds[1], SHUT_WR);
  driver.join();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[1], TrialMessage(TrackerLogMetrics{"00000000000000aa",
                                                    {{1, {{"loss", 2.0}, {"lr", 0.1}}}}}));
  EXPECT_TRUE(std::holds_alternative<TrackerRegister>(seen[2]));
}

TEST(TrialChannel, ATrialWhoseDriverIsGoneIsToldSo) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  close(fds[0]);
  TrialChannel trial(fds[1]);
  EXPECT_THROW(trial.ReceiveFromDriver(), ChannelClosed);
  EXPECT_THROW(trial.Send(TrialPrepared{}), ChannelClosed);
  try {
    AwaitDriver<TrialGo>(trial);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              "the sweep that started this trial has ended; resume the sweep with --resume");
  }
}

}  // namespace
}  // namespace tune
