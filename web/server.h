// `tune serve`: the registry's JSON API (api.h) and its static UI (web/ui, compiled into the
// binary) over HTTP or HTTPS (TLS through CivetWeb and OpenSSL) with CivetWeb: the registry
// server of a team (DESIGN section 10), and one person's web view. No libtorch.
//
// Living beside training: the server opens the registry like any other writer, so it holds the
// registry only for the moment of a promotion; reads never wait for writes and see every version
// registered before the request (registry.h). Threads: CivetWeb answers requests on a pool of
// 512 threads; a client gets 10 seconds to send its request and to take each part of the answer,
// so idle and slow connections cannot hold them all for long. The server is stopped by
// destroying it. Stored objects are sent only as their SHA-256 says they are (api.h ObjectBody).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace tune {

struct ServeOptions {
  std::filesystem::path registry;
  std::string host = "127.0.0.1";  // the IPv4 address to bind: the loopback address unless told
  int port = 8080;                 // 0: any free port (port() says which)
  // The owner's token for this run of the server (admin; api.h ServerAccess); not empty.
  std::string token;
  bool open_reads = false;  // reads without a token
  // TLS: PEM files of the server's certificate (its chain) and private key; both or neither.
  std::filesystem::path tls_cert;
  std::filesystem::path tls_key;
  // Serve plain HTTP on an address other machines reach (tokens would cross the network in the
  // clear): refused unless this is set.
  bool insecure_http = false;
  // Other names clients reach this server by (a DNS name, a proxy's), for the Host check: the
  // bound address, "localhost" for the loopback address and this machine's host name for any
  // other are accepted without it.
  std::vector<std::string> allowed_hosts;
};

class WebServer {
 public:
  // Throws UserError when the registry cannot be opened or the address cannot be bound.
  static std::unique_ptr<WebServer> Start(const ServeOptions& options);
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  int port() const;
  std::string url() const;  // http://HOST:PORT, or https://

  class Impl;

 private:
  explicit WebServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tune
