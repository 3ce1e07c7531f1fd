// `tune serve`: the registry's JSON API (api.h) and its static UI (web/ui, compiled into the
// binary) over HTTP with CivetWeb. No libtorch.
//
// Living beside training: the server opens the registry like any other writer, so it holds the
// registry only for the moment of a promotion; reads never wait for writes and see every version
// registered before the request (registry.h). Threads: CivetWeb answers requests on a pool of
// threads; the server is stopped by destroying it.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

namespace tune {

struct ServeOptions {
  std::filesystem::path registry;
  std::string host = "127.0.0.1";  // what to bind: the loopback address unless told otherwise
  int port = 8080;                 // 0: any free port (port() says which)
  std::string token;               // what a promotion must send; not empty
};

class WebServer {
 public:
  // Throws UserError when the registry cannot be opened or the address cannot be bound.
  static std::unique_ptr<WebServer> Start(const ServeOptions& options);
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  int port() const;
  std::string url() const;  // http://HOST:PORT

  class Impl;

 private:
  explicit WebServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tune
