// The JSON API of `tune serve` (DESIGN section 6), apart from HTTP: a request in, a response out.
// server.cpp carries requests between CivetWeb and Api; tests drive the whole over sockets.
//
//   GET  /api/health
//   GET  /api/adapters                                   names, version counts, aliases
//   GET  /api/versions?name=&filter=&sort=&offset=&limit= a page of version summaries (each
//                                                        with its scores' scales) and the total
//   GET  /api/adapters/NAME/versions/N                   one version's full record
//   GET  /api/adapters/NAME/versions/N/files/PATH        a file of the version, by its digest
//   GET  /api/adapters/NAME/versions/N/eval              its evaluation outputs (prompt,
//                                                        reference, prediction per example)
//   GET  /api/adapters/NAME/history                      alias moves, oldest first
//   GET  /api/diff?from=REF&to=REF                       what differs between two versions
//   GET  /api/runs/ID                                    a run and its metrics by step
//   GET  /api/sweeps[/NAME]                              sweeps: each trial's run (status, last
//                                                        step and loss, live; killed once its
//                                                        process is gone), configuration, seed,
//                                                        parameters, where it ran (node, Slurm
//                                                        job, attempt) and every attempt with
//                                                        why it ended, and the version and scores
//                                                        it became; the objective; each score's
//                                                        scale (goal, min, max); each
//                                                        configuration's mean, sd and 95%
//                                                        interval of every score, and which
//                                                        interval that is
//   POST /api/adapters/NAME/aliases/ALIAS                {"version": N, "expect_version": M}
//
// Every path segment and query value is checked by grammar before any lookup (names, aliases,
// versions, run ids); files are found through the version's manifest, never by a path on disk.
// Errors are JSON {"error": "..."} with 400, 401, 403, 404, 409 or 413.
//
// Threads: Handle may be called from any number of threads at once (the registry serialises
// writes). Security: every request must name this server in its Host (a page of another site
// whose name was made to resolve to this address, DNS rebinding, sends its own name); a POST
// needs the token (Authorization: Bearer TOKEN) and, when the browser sent an Origin, this
// server's; reads need no token.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace tune {

class Registry;

struct HttpRequest {
  std::string method;  // GET, POST, ...
  std::string path;    // percent-decoded, without the query: /api/adapters/rank/versions/3
  std::map<std::string, std::string> query;    // decoded
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

// A stored object to send as a response's body: the server checks its bytes against `sha256`
// and `size_bytes` as it sends them (registry.h: bytes leave the registry only checked).
struct ObjectBody {
  std::filesystem::path path;
  std::string sha256;
  int64_t size_bytes = 0;
  std::string what;  // how the server's log names it: "rank:3 adapter_model.safetensors"
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // An object to send instead of `body` (the server handles Range requests for it).
  std::optional<ObjectBody> object;
};

// The names a request may give this server by: the Host header's host:port, and the Origin a
// browser sends.
struct ServerNames {
  std::string scheme = "http";
  int port = 0;
  std::vector<std::string> hosts;  // lower case, without the port: "127.0.0.1", "localhost"

  // Whether `host` (a Host header: NAME or NAME:PORT, the port defaulting to the scheme's) names
  // this server.
  bool AcceptsHost(std::string_view host) const;
  // Whether `origin` (scheme://NAME[:PORT]) is this server.
  bool AcceptsOrigin(std::string_view origin) const;
};

class Api {
 public:
  // `registry` must outlive the Api.
  Api(Registry& registry, std::string token, ServerNames names);

  HttpResponse Handle(const HttpRequest& request) const;
  // A 403 when the request's Host does not name this server (for every path, not only /api/).
  std::optional<HttpResponse> RefuseHost(const HttpRequest& request) const;

  static constexpr size_t kMaxBodyBytes = 64 * 1024;

 private:
  HttpResponse Get(const HttpRequest& request, const std::vector<std::string>& parts) const;
  HttpResponse Post(const HttpRequest& request, const std::vector<std::string>& parts) const;
  std::optional<HttpResponse> RefuseMutation(const HttpRequest& request) const;
  bool HasAdapter(const std::string& name) const;
  // Every sweep the registry's runs name (or only `only`), as JSON.
  nlohmann::json Sweeps(const std::string& only) const;

  Registry& registry_;
  std::string token_;
  ServerNames names_;
};

// A JSON error response: {"error": message}.
HttpResponse ErrorResponse(int status, const std::string& message);

}  // namespace tune
