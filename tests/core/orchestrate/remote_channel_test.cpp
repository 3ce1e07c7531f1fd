// The trial channel over TCP: a trial and a driver that share the sweep's secret talk; anything
// else on the network gets nothing from either; nobody listening leaves the trial alone.
#include "orchestrate/remote_channel.h"

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Polls `listener` until a connection has proved itself (or 30 s passed).
std::vector<ChannelListener::Accepted> AcceptOne(ChannelListener& listener) {
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  std::vector<ChannelListener::Accepted> accepted;
  while (accepted.empty() && Clock::now() < deadline) {
    accepted = listener.Poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return accepted;
}

TEST(RemoteChannel, ATrialAndADriverThatShareTheSecretTalk) {
  const std::string secret = RandomHex32();
  ChannelListener listener(secret, 7);
  Connected trial;
  std::thread player([&] {
    trial = ConnectToDriver({"127.0.0.1", listener.port(), secret}, 3, std::chrono::seconds(10));
  });
  std::vector<ChannelListener::Accepted> accepted = AcceptOne(listener);
  player.join();
  ASSERT_EQ(accepted.size(), 1u);
  EXPECT_EQ(accepted[0].trial, 3);
  ASSERT_NE(trial.channel, nullptr);
  EXPECT_EQ(trial.heartbeat_seconds, 7);
  trial.channel->Send(TrialEvaluated{20, 1.5});
  accepted[0].channel->Send(TrialVerdict{false, "pruned at step 20"});
  EXPECT_EQ(trial.channel->ReceiveFromDriver(),
            DriverMessage(TrialVerdict{false, "pruned at step 20"}));
  std::vector<TrialMessage> heard;
  for (int i = 0; i < 1000 && heard.empty(); ++i) {
    heard = accepted[0].channel->TakeTrialMessages();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0], TrialMessage(TrialEvaluated{20, 1.5}));
}

// Neither side gives anything to one that does not prove the secret: a trial is refused by a
// driver of another sweep, and the driver takes no connection from it.
TEST(RemoteChannel, NeitherSideTrustsOneWithoutTheSecret) {
  ChannelListener listener(RandomHex32(), 7);
  std::string refusal;
  std::thread player([&] {
    try {
      ConnectToDriver({"127.0.0.1", listener.port(), RandomHex32()}, 3, std::chrono::seconds(10));
    } catch (const UserError& e) {
      refusal = e.what();
    }
  });
  const auto deadline = Clock::now() + std::chrono::seconds(15);
  std::vector<ChannelListener::Accepted> accepted;
  while (Clock::now() < deadline && refusal.empty()) {
    const std::vector<ChannelListener::Accepted> more = listener.Poll();
    for (const auto& a : more) accepted.push_back({a.trial, nullptr});
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  player.join();
  EXPECT_NE(refusal.find("does not know this sweep's secret: it is not this sweep's driver"),
            std::string::npos)
      << refusal;
  EXPECT_TRUE(accepted.empty());
}

TEST(RemoteChannel, NobodyListeningLeavesTheTrialAlone) {
  int port = 0;
  {
    ChannelListener gone(RandomHex32(), 7);
    port = gone.port();
  }
  const Connected connected =
      ConnectToDriver({"127.0.0.1", port, RandomHex32()}, 1, std::chrono::seconds(2));
  EXPECT_EQ(connected.channel, nullptr);
}

TEST(RemoteChannel, TheDriverAnswersOnlyToItsOwnSecret) {
  const std::string secret = RandomHex32();
  ChannelListener listener(secret, 7);
  bool mine = false, other = true;
  std::atomic<bool> asked = false;
  std::thread asker([&] {
    mine = DriverAnswers({"127.0.0.1", listener.port(), secret});
    other = DriverAnswers({"127.0.0.1", listener.port(), RandomHex32()});
    asked = true;
  });
  while (!asked) {
    EXPECT_TRUE(listener.Poll().empty());  // a question is not a trial
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  asker.join();
  EXPECT_TRUE(mine);
  EXPECT_FALSE(other);
}

TEST(RemoteChannel, TheConnectionFileIsReadableByItsOwnerAlone) {
  testing::TempDir dir;
  const fs::path file = dir.path() / "driver.json";
  const DriverAddress address{"login1", 4242, RandomHex32()};
  WriteDriverAddress(file, address);
  EXPECT_EQ(ReadDriverAddress(file), address);
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  dir.Write("junk.json", "{\"host\": 1}");
  try {
    ReadDriverAddress(dir.path() / "junk.json");
    FAIL() << "junk read as a connection file";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("junk.json: not a sweep driver's connection file"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace tune
