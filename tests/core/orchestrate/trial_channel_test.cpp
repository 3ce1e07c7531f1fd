// The trial channel: every message reads back as written, junk is refused with one line, and the
// two ends pass whole messages over a real socket whatever the reads split.
#include "orchestrate/trial_channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace tune {
namespace {

TEST(TrialChannel, EveryMessageReadsBackAsWritten) {
  const std::vector<TrialMessage> trial_messages = {
      TrialPrepared{}, TrialStarted{"0123456789abcdef"},
      StepReport{3, 30, 1.25, 2e-4, 0.5, 1234.5, 0.75}, TrialEvaluated{10, 1.125},
      TrialDone{4, {{"exact_match", 0.5}, {"eval_loss", 1.0}}, {{"exact_match", 0.0}}, 12.5}};
  for (const TrialMessage& message : trial_messages) {
    const std::string line = EncodeTrialMessage(message);
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    EXPECT_EQ(DecodeTrialMessage(line), message) << line;
  }
  const std::vector<DriverMessage> driver_messages = {
      TrialGo{"rank-2", 3, 2, "adapter.rank=4 optimizer.lr=0.001", "ab12"}, TrialVerdict{true, ""},
      TrialVerdict{false, "pruned at step 5 (eval_loss 2.0000)"}};
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
    const std::string line = EncodeTrialMessage(TrialStarted{"ff"}) + "\n";
    ASSERT_EQ(send(fds[1], line.data(), 5, 0), 5);
    EXPECT_TRUE(driver.TakeTrialMessages().empty());
    ASSERT_EQ(send(fds[1], line.data() + 5, line.size() - 5, 0),
              static_cast<ssize_t>(line.size() - 5));
    EXPECT_EQ(driver.TakeTrialMessages(), (std::vector<TrialMessage>{TrialStarted{"ff"}}));

    driver.Send(TrialVerdict{false, "stop"});
    EXPECT_EQ(trial.ReceiveFromDriver(), DriverMessage(TrialVerdict{false, "stop"}));
    trial.Send(TrialDone{1, {}, {}, 0.0});
  }  // the trial's end closes
  EXPECT_EQ(driver.TakeTrialMessages(), (std::vector<TrialMessage>{TrialDone{1, {}, {}, 0.0}}));
  EXPECT_TRUE(driver.closed());
  EXPECT_THROW(driver.Send(TrialGo{}), ChannelClosed);
}

TEST(TrialChannel, ATrialWhoseDriverIsGoneIsToldSo) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  close(fds[0]);
  TrialChannel trial(fds[1]);
  EXPECT_THROW(trial.ReceiveFromDriver(), ChannelClosed);
  EXPECT_THROW(trial.Send(TrialPrepared{}), ChannelClosed);
}

}  // namespace
}  // namespace tune
