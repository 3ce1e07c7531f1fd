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

#include "registry/registry.h"
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

// `tune serve token add|ls|revoke`: the registry's tokens, on its folder (the server's owner,
// on its machine) or through a server (an admin token).
int Tokens(CLI::App& token, CLI::App& add, CLI::App& ls, const std::string& registry,
           const std::string& name, const std::string& role_name) {
  using tune::Registry;
  const std::unique_ptr<Registry> opened = Registry::Open(
      registry, ls.parsed() ? Registry::OpenMode::kReadOnly : Registry::OpenMode::kReadWrite);
  if (add.parsed()) {
    const std::optional<tune::Role> role = tune::RoleFromName(role_name);
    if (!role) {
      throw tune::UserError("--role " + role_name + ": a role is read, write, promote or admin");
    }
    const std::string secret = opened->AddToken(name, *role);
    std::printf("token %s (%s): %s\n", name.c_str(), role_name.c_str(), secret.c_str());
    std::printf(
        "it is shown once: give it to its holder now (TUNE_TOKEN=... or [registry] "
        "token_file)\n");
    return 0;
  }
  if (ls.parsed()) {
    std::printf("%-24s %-8s %-22s %s\n", "NAME", "ROLE", "CREATED BY", "STATE");
    for (const tune::TokenInfo& info : opened->ListTokens()) {
      std::printf("%-24s %-8s %-22s %s\n", info.name.c_str(),
                  std::string(tune::RoleName(info.role)).c_str(), info.created_by.c_str(),
                  info.revoked_ms != 0 ? ("revoked by " + info.revoked_by).c_str() : "active");
    }
    return 0;
  }
  (void)token;
  opened->RevokeToken(name);
  std::printf("token %s revoked: requests with it are refused from now on\n", name.c_str());
  return 0;
}

// Runs `command` and turns what it throws into one line on stderr: exit status 1 for the user's
// errors, 2 for the program's.
template <typename Command>
int ReportErrors(Command command) {
  try {
    return command();
  } catch (const tune::UserError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return 2;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tune-serve: the registry server and web view (run it as `tune serve`)",
               "tune serve"};
  tune::ServeOptions options;
  std::string registry;
  std::string token_file;
  std::string tls_cert, tls_key;
  app.add_option("--registry", registry, "Registry folder")->required();
  app.add_option("--host", options.host,
                 "IPv4 address to bind (127.0.0.1: this machine only; 0.0.0.0: all interfaces, "
                 "which needs --tls-cert and --tls-key or --insecure-http)")
      ->capture_default_str();
  app.add_option("--port", options.port, "Port (0: any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app.add_option("--token-file", token_file,
                 "File holding the owner's token, admin for this run of the server (default: "
                 "$TUNE_SERVE_TOKEN, else a new random token, printed)");
  app.add_option("--allow-host", options.allowed_hosts,
                 "Another name clients reach this server by (a DNS name, a proxy's); repeatable");
  app.add_option("--tls-cert", tls_cert, "PEM file of the server's certificate (and its chain)");
  app.add_option("--tls-key", tls_key, "PEM file of the certificate's private key");
  app.add_flag("--insecure-http", options.insecure_http,
               "Serve plain HTTP on an address other machines reach (tokens cross the network "
               "in the clear)");
  app.add_flag("--open-reads", options.open_reads,
               "Let anyone who reaches the server browse and fetch without a token");

  CLI::App* token = app.add_subcommand("token", "Add, list and revoke the registry's tokens");
  token->require_subcommand(1);
  std::string token_name, role = "read";
  CLI::App* add = token->add_subcommand("add", "Make a token; it is printed once");
  add->add_option("name", token_name, "Whose it is: a person or a machine")->required();
  add->add_option("--role", role, "read, write, promote or admin")->capture_default_str();
  CLI::App* ls = token->add_subcommand("ls", "List tokens (never their secrets)");
  CLI::App* revoke = token->add_subcommand("revoke", "Refuse a token from now on");
  revoke->add_option("name", token_name, "The token's name")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (token->parsed()) {
    return ReportErrors([&] { return Tokens(*token, *add, *ls, registry, token_name, role); });
  }
  // Blocked before any thread starts, so that every thread leaves them to sigwait below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  return ReportErrors([&] {
    options.registry = registry;
    options.tls_cert = tls_cert;
    options.tls_key = tls_key;
    bool generated = false;
    std::tie(options.token, generated) = Token(token_file);
    const std::unique_ptr<tune::WebServer> server = tune::WebServer::Start(options);
    std::printf("serving registry %s at %s\n", registry.c_str(), server->url().c_str());
    if (generated) {
      std::printf("owner's token (admin, for this run of the server): %s\n", options.token.c_str());
      std::printf("open %s/#token=%s in a browser\n", server->url().c_str(), options.token.c_str());
    }
    std::fflush(stdout);
    int signal = 0;
    sigwait(&stop, &signal);
    std::printf("stopped\n");
    return 0;
  });
}
