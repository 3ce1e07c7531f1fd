// The trial channel over TCP, for a trial on another machine (a Slurm task) and the `tune sweep`
// that started it. Both sides include this header; it defines how they meet, and
// trial_channel.h what they say afterwards.
//
// The driver listens on a port the kernel picks and writes where it is, with a secret made for the
// sweep, to a connection file on the filesystem it shares with the nodes (mode 0600: the secret is
// readable by the user the trials run as, and nobody else). A trial connects and the two prove to
// each other that they know the secret before anything else is said, so that nobody else on the
// network can pose as a trial (and register versions) or as the driver (and stop trials):
//   trial  -> {"type":"hello","trial":N,"nonce":T}
//   driver -> {"type":"challenge","nonce":D,"proof":HMAC-SHA256(secret, "driver T")}
//   trial  -> {"type":"proof","proof":HMAC-SHA256(secret, "trial N D")}
//   driver -> {"type":"welcome","heartbeat_seconds":H}
// each one line of JSON; nonces are 32 random bytes in hex. The secret itself never crosses the
// network. What follows is not encrypted: the channel is meant for a cluster's own network.
//
// Threads: a ChannelListener is used by one thread. Errors: UserError of one line.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "orchestrate/trial_channel.h"

namespace tune {

// Where a sweep's driver listens, as its connection file holds it.
struct DriverAddress {
  std::string host;  // as the nodes resolve it
  int port = 0;
  std::string secret;  // 64 hex digits
  bool operator==(const DriverAddress&) const = default;
};

// 32 random bytes as hex, from the kernel's generator.
std::string RandomHex32();

// Writes the connection file readable by its owner only, atomically (a trial never reads half of
// one). Reading throws UserError naming the file when it is missing or unreadable.
void WriteDriverAddress(const std::filesystem::path& file, const DriverAddress& address);
DriverAddress ReadDriverAddress(const std::filesystem::path& file);

// Beside the connection file, the go the driver would give each trial (go/trial-N.json, one
// driver message): what a trial that cannot reach its driver trains alone with. Written
// atomically; reading throws UserError naming the file.
std::filesystem::path GoFile(const std::filesystem::path& driver_file, int64_t trial);
void WriteGo(const std::filesystem::path& driver_file, const TrialGo& go);
TrialGo ReadGo(const std::filesystem::path& driver_file, int64_t trial);

// The driver's side: a listening socket, and the connections still proving themselves. A
// connection that does not prove itself within 10 s, or sends a line longer than 4 KiB, is closed;
// at most 64 may be proving themselves at once.
class ChannelListener {
 public:
  // Listens on every interface, on a port the kernel picks. Throws UserError.
  ChannelListener(std::string secret, int64_t heartbeat_seconds);
  ~ChannelListener();
  ChannelListener(const ChannelListener&) = delete;
  ChannelListener& operator=(const ChannelListener&) = delete;

  int port() const { return port_; }
  // What to poll for input: the listening socket and every connection still proving itself.
  std::vector<int> fds() const;

  struct Accepted {
    int64_t trial = 0;
    std::unique_ptr<TrialChannel> channel;
  };
  // Accepts what waits and moves handshakes on, without blocking; returns the channels that
  // proved themselves, each with the trial it says it is.
  std::vector<Accepted> Poll();

 private:
  struct Pending;
  // Reads what `pending` sent; false when it is to be closed.
  bool Advance(Pending& pending, std::vector<Accepted>& accepted);

  std::string secret_;
  int64_t heartbeat_seconds_;
  int fd_ = -1;
  int port_ = 0;
  std::vector<std::unique_ptr<Pending>> pending_;
};

struct Connected {
  std::unique_ptr<TrialChannel> channel;  // null: nobody answered at the address
  int64_t heartbeat_seconds = 0;          // how often the driver wants to hear from the trial
};

// The trial's side: connects to the driver at `address` as trial `trial` and proves the secret.
// No channel when nothing answers within `timeout` (the driver has gone: the trial may go on
// alone). Throws UserError when something answers but fails the handshake (another sweep's
// driver, or something posing as one). The channel gives up waiting for the driver after
// 10 minutes of silence, as if it had closed.
Connected ConnectToDriver(const DriverAddress& address, int64_t trial,
                          std::chrono::milliseconds timeout);

// Whether `host` resolves to an address here.
bool Resolves(const std::string& host);

// Whether this sweep's driver listens at `address`: it answers a hello with the proof of the
// secret (nothing else that may have taken the port does). For `tune sweep --attach`.
bool DriverAnswers(const DriverAddress& address);

// Sends a heartbeat on `channel` every `interval` from a thread of its own, until destroyed or
// until a send fails. `channel` must outlive it.
class Heartbeat {
 public:
  Heartbeat(TrialChannel& channel, std::chrono::milliseconds interval);
  ~Heartbeat();
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace tune
