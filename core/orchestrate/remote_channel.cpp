#include "orchestrate/remote_channel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>

#include <nlohmann/json.hpp>

#include "util/echo.h"
#include "util/error.h"
#include "util/log.h"

namespace tune {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxHandshakeLine = 4096;
constexpr size_t kMaxPending = 64;
constexpr std::chrono::seconds kHandshakeTime{10};
// How long a trial waits for its driver's answer (a verdict, a tracker's reply: a registry write
// may wait a minute for another's) before it takes the driver for gone.
constexpr std::chrono::minutes kDriverSilence{10};

std::string Hex(const unsigned char* bytes, size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string hex;
  for (size_t i = 0; i < size; ++i) {
    hex += digits[bytes[i] >> 4];
    hex += digits[bytes[i] & 15];
  }
  return hex;
}

std::string Proof(const std::string& secret, const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest, &size);
  return Hex(digest, size);
}

bool SameProof(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// Small messages that answer each other: sent at once, not gathered (Nagle), and a peer that
// vanished without closing is noticed within about two minutes.
void TuneSocket(int fd) {
  int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
  int idle = 60, interval = 10, count = 6;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

void SendRaw(int fd, const json& message) {
  const std::string line = message.dump() + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t n = send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw ChannelClosed("the connection closed during the handshake");
    sent += static_cast<size_t>(n);
  }
}

// A handshake line as JSON with a string "type"; nullopt when it is anything else.
std::optional<json> ParseLine(const std::string& line) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) return std::nullopt;
  return j;
}

// The trial's side of the handshake: one line, waiting at most until `deadline`.
json ReadLine(int fd, Clock::time_point deadline, const std::string& where) {
  std::string line;
  char c = 0;
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      throw UserError("the driver at " + where + " did not answer the handshake within " +
                      std::to_string(kHandshakeTime.count()) + " s");
    }
    const ssize_t n = recv(fd, &c, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw UserError("the driver at " + where +
                      " closed the connection during the handshake: it is another sweep's "
                      "driver, or the sweep's secret changed (tune sweep --attach rewrites it)");
    }
    if (c == '\n') break;
    line += c;
    if (line.size() > kMaxHandshakeLine)
      throw UserError("the driver at " + where + " sent a line too long");
  }
  std::optional<json> j = ParseLine(line);
  if (!j)
    throw UserError("the driver at " + where + " answered '" + Echo(line, 60) +
                    "', not a tune sweep's handshake");
  return *j;
}

// A TCP connection to host:port within `timeout`, or -1 when nothing answers there.
int Dial(const std::string& host, int port, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      close(fd);
      fd = -1;
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int error = 0;
    socklen_t size = sizeof(error);
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0 || error != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

}  // namespace

std::string RandomHex32() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) throw UserError("no random bytes from OpenSSL");
  return Hex(bytes, sizeof(bytes));
}

void WriteDriverAddress(const fs::path& file, const DriverAddress& address) {
  const fs::path temp = file.string() + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw UserError("cannot write " + temp.string() + ": " + std::strerror(errno));
  fchmod(fd, 0600);  // an older file of another mode keeps it otherwise
  const std::string text =
      json{{"host", address.host}, {"port", address.port}, {"secret", address.secret}}.dump() +
      "\n";
  const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  if (!written) throw UserError("cannot write " + temp.string() + " (disk full?)");
  fs::rename(temp, file);
}

DriverAddress ReadDriverAddress(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw UserError(file.string() + ": cannot read the sweep driver's connection file");
  try {
    const json j = json::parse(in);
    return {j.at("host").get<std::string>(), j.at("port").get<int>(),
            j.at("secret").get<std::string>()};
  } catch (const json::exception& e) {
    throw UserError(file.string() + ": not a sweep driver's connection file (" + e.what() + ")");
  }
}

fs::path GoFile(const fs::path& driver_file, int64_t trial) {
  return driver_file.parent_path() / "go" / ("trial-" + std::to_string(trial) + ".json");
}

void WriteGo(const fs::path& driver_file, const TrialGo& go) {
  const fs::path file = GoFile(driver_file, go.trial);
  fs::create_directories(file.parent_path());
  const fs::path temp = file.string() + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << EncodeDriverMessage(go) << "\n";
    if (!out.flush()) throw UserError("cannot write " + temp.string() + " (disk full?)");
  }
  fs::rename(temp, file);
}

TrialGo ReadGo(const fs::path& driver_file, int64_t trial) {
  const fs::path file = GoFile(driver_file, trial);
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line)) {
    throw UserError(file.string() + ": cannot read what the sweep's driver wrote for trial " +
                    std::to_string(trial) + "; is --trial right?");
  }
  const DriverMessage message = DecodeDriverMessage(line);
  if (const auto* go = std::get_if<TrialGo>(&message)) return *go;
  throw UserError(file.string() + ": not a trial's go");
}

struct ChannelListener::Pending {
  int fd = -1;
  std::string buffer;
  int64_t trial = 0;
  std::string nonce;  // the driver's, once the hello came
  Clock::time_point deadline;
  ~Pending() {
    if (fd >= 0) close(fd);
  }
};

ChannelListener::ChannelListener(std::string secret, int64_t heartbeat_seconds)
    : secret_(std::move(secret)), heartbeat_seconds_(heartbeat_seconds) {
  // Both address families when the host has IPv6, IPv4 alone otherwise.
  fd_ = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ >= 0) {
    int off = 0;
    setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
    sockaddr_in6 any{};
    any.sin6_family = AF_INET6;
    any.sin6_addr = in6addr_any;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&any), sizeof(any)) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  if (fd_ < 0) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_ANY);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&any), sizeof(any)) != 0) {
      throw UserError(std::string("cannot listen for trials on a TCP port: ") +
                      std::strerror(errno));
    }
  }
  if (listen(fd_, 128) != 0) {
    throw UserError(std::string("cannot listen for trials: ") + std::strerror(errno));
  }
  sockaddr_storage bound{};
  socklen_t size = sizeof(bound);
  getsockname(fd_, reinterpret_cast<sockaddr*>(&bound), &size);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

ChannelListener::~ChannelListener() {
  if (fd_ >= 0) close(fd_);
}

std::vector<int> ChannelListener::fds() const {
  std::vector<int> fds = {fd_};
  for (const auto& pending : pending_) fds.push_back(pending->fd);
  return fds;
}

std::vector<ChannelListener::Accepted> ChannelListener::Poll() {
  while (true) {
    const int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) break;
    if (pending_.size() >= kMaxPending) {
      close(fd);
      continue;
    }
    auto pending = std::make_unique<Pending>();
    pending->fd = fd;
    pending->deadline = Clock::now() + kHandshakeTime;
    pending_.push_back(std::move(pending));
  }
  std::vector<Accepted> accepted;
  for (size_t i = 0; i < pending_.size();) {
    Pending& pending = *pending_[i];
    bool keep = false;
    try {
      keep = Advance(pending, accepted);
    } catch (const ChannelClosed&) {
    }
    if (keep && Clock::now() < pending.deadline) {
      ++i;
    } else {
      pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  return accepted;
}

bool ChannelListener::Advance(Pending& pending, std::vector<Accepted>& accepted) {
  char chunk[1024];
  while (true) {
    const ssize_t n = recv(pending.fd, chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n > 0) {
      pending.buffer.append(chunk, static_cast<size_t>(n));
      if (pending.buffer.size() > kMaxHandshakeLine) return false;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return false;  // closed, or failed
  }
  size_t end;
  while ((end = pending.buffer.find('\n')) != std::string::npos) {
    const std::optional<json> line = ParseLine(pending.buffer.substr(0, end));
    pending.buffer.erase(0, end + 1);
    if (!line) return false;
    const std::string type = (*line)["type"];
    if (type == "hello" && pending.nonce.empty()) {
      const json& trial = (*line)["trial"];
      const json& nonce = (*line)["nonce"];
      if (!trial.is_number_integer() || !nonce.is_string()) return false;
      pending.trial = trial.get<int64_t>();
      pending.nonce = RandomHex32();
      TuneSocket(pending.fd);
      SendRaw(pending.fd, {{"type", "challenge"},
                           {"nonce", pending.nonce},
                           {"proof", Proof(secret_, "driver " + nonce.get<std::string>())}});
    } else if (type == "proof" && !pending.nonce.empty()) {
      const json& proof = (*line)["proof"];
      const std::string expected =
          Proof(secret_, "trial " + std::to_string(pending.trial) + " " + pending.nonce);
      if (!proof.is_string() || !SameProof(proof.get<std::string>(), expected)) {
        LogWarning("refused a connection that claimed to be trial " +
                   std::to_string(pending.trial) + " without the sweep's secret");
        return false;
      }
      SendRaw(pending.fd, {{"type", "welcome"}, {"heartbeat_seconds", heartbeat_seconds_}});
      // The trial says nothing more until welcome, so nothing is left in the buffer.
      fcntl(pending.fd, F_SETFL, fcntl(pending.fd, F_GETFL) & ~O_NONBLOCK);
      accepted.push_back({pending.trial, std::make_unique<TrialChannel>(pending.fd)});
      pending.fd = -1;
      return false;
    } else {
      return false;
    }
  }
  return true;
}

Connected ConnectToDriver(const DriverAddress& address, int64_t trial,
                          std::chrono::milliseconds timeout) {
  const std::string where = address.host + ":" + std::to_string(address.port);
  const int fd = Dial(address.host, address.port, timeout);
  if (fd < 0) return {};
  TrialChannel closer(fd);  // closes it on a failed handshake; the channel returned is a dup
  TuneSocket(fd);
  const auto deadline = Clock::now() + kHandshakeTime;
  const std::string nonce = RandomHex32();
  try {
    SendRaw(fd, {{"type", "hello"}, {"trial", trial}, {"nonce", nonce}});
  } catch (const ChannelClosed&) {
    return {};
  }
  const json challenge = ReadLine(fd, deadline, where);
  if (challenge["type"] != "challenge" || !challenge.contains("nonce") ||
      !challenge["nonce"].is_string() || !challenge.contains("proof") ||
      !challenge["proof"].is_string() ||
      !SameProof(challenge["proof"].get<std::string>(), Proof(address.secret, "driver " + nonce))) {
    throw UserError("the driver at " + where +
                    " does not know this sweep's secret: it is not this sweep's driver");
  }
  SendRaw(fd, {{"type", "proof"},
               {"proof", Proof(address.secret, "trial " + std::to_string(trial) + " " +
                                                   challenge["nonce"].get<std::string>())}});
  const json welcome = ReadLine(fd, deadline, where);
  if (welcome["type"] != "welcome") {
    throw UserError("the driver at " + where + " refused trial " + std::to_string(trial));
  }
  timeval silence{std::chrono::duration_cast<std::chrono::seconds>(kDriverSilence).count(), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &silence, sizeof(silence));
  Connected connected;
  connected.heartbeat_seconds = welcome.value("heartbeat_seconds", int64_t{0});
  connected.channel = std::make_unique<TrialChannel>(dup(fd));
  return connected;
}

bool Resolves(const std::string& host) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (host.empty() || getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0) return false;
  freeaddrinfo(found);
  return true;
}

bool DriverAnswers(const DriverAddress& address) {
  const int fd = Dial(address.host, address.port, std::chrono::seconds(5));
  if (fd < 0) return false;
  TrialChannel closer(fd);
  const std::string nonce = RandomHex32();
  try {
    SendRaw(fd, {{"type", "hello"}, {"trial", 0}, {"nonce", nonce}});
    const json challenge = ReadLine(fd, Clock::now() + kHandshakeTime,
                                    address.host + ":" + std::to_string(address.port));
    return challenge["type"] == "challenge" && challenge.contains("proof") &&
           challenge["proof"].is_string() &&
           SameProof(challenge["proof"].get<std::string>(),
                     Proof(address.secret, "driver " + nonce));
  } catch (const UserError&) {
    return false;
  }
}

struct Heartbeat::State {
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;
};

Heartbeat::Heartbeat(TrialChannel& channel, std::chrono::milliseconds interval)
    : state_(std::make_shared<State>()) {
  thread_ = std::thread([&channel, interval, state = state_] {
    std::unique_lock lock(state->mutex);
    while (!state->wake.wait_for(lock, interval, [&] { return state->stop; })) {
      try {
        channel.Send(TrialHeartbeat{});
      } catch (const ChannelClosed&) {
        return;
      }
    }
  });
}

Heartbeat::~Heartbeat() {
  {
    const std::lock_guard lock(state_->mutex);
    state_->stop = true;
  }
  state_->wake.notify_all();
  thread_.join();
}

}  // namespace tune
