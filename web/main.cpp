// tune-serve: what `tune serve` runs (it replaces itself with this executable, which has no
// libtorch). Serves until SIGINT or SIGTERM.
//
//   tune-serve --registry DIR [--host 127.0.0.1] [--port 8080] [--token-file FILE]
//              [--allow-host NAME ...]
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "util/error.h"
#include "web/server.h"

namespace {

std::string RandomToken() {
  std::ifstream random("/dev/urandom", std::ios::binary);
  unsigned char bytes[16] = {};
  random.read(reinterpret_cast<char*>(bytes), sizeof(bytes));
  if (!random) throw tune::UserError("cannot read /dev/urandom for a token; pass --token-file");
  static const char* kHex = "0123456789abcdef";
  std::string token;
  for (const unsigned char byte : bytes)
    token.append(1, kHex[byte >> 4]).append(1, kHex[byte & 15]);
  return token;
}

// The token from --token-file, else $TUNE_SERVE_TOKEN, else a new one (and whether it is new).
std::pair<std::string, bool> Token(const std::string& file) {
  if (!file.empty()) {
    std::ifstream in(file);
    std::string token;
    if (!in || !std::getline(in, token) || token.empty()) {
      throw tune::UserError("--token-file " + file +
                            ": cannot read a token from its first line; write the token there");
    }
    return {token, false};
  }
  if (const char* env = std::getenv("TUNE_SERVE_TOKEN"); env != nullptr && *env != '\0') {
    return {env, false};
  }
  return {RandomToken(), true};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tune-serve: the registry's web view (run it as `tune serve`)", "tune serve"};
  tune::ServeOptions options;
  std::string registry;
  std::string token_file;
  app.add_option("--registry", registry, "Registry folder")->required();
  app.add_option("--host", options.host,
                 "IPv4 address to bind (127.0.0.1: this machine only; 0.0.0.0: all interfaces)")
      ->capture_default_str();
  app.add_option("--port", options.port, "Port (0: any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app.add_option("--token-file", token_file,
                 "File holding the token promotions need (default: $TUNE_SERVE_TOKEN, else a new "
                 "random token, printed)");
  app.add_option("--allow-host", options.allowed_hosts,
                 "Another name clients reach this server by (a DNS name, a proxy's); repeatable");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  // Blocked before any thread starts, so that every thread leaves them to sigwait below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  try {
    options.registry = registry;
    bool generated = false;
    std::tie(options.token, generated) = Token(token_file);
    const std::unique_ptr<tune::WebServer> server = tune::WebServer::Start(options);
    std::printf("serving registry %s at %s\n", registry.c_str(), server->url().c_str());
    if (generated) std::printf("token for promotions: %s\n", options.token.c_str());
    std::fflush(stdout);
    int signal = 0;
    sigwait(&stop, &signal);
    std::printf("stopped\n");
    return 0;
  } catch (const tune::UserError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return 2;
  }
}
