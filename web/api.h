// The JSON API of `tune serve` (DESIGN sections 6 and 10), apart from HTTP: a request in, a
// response out. server.cpp carries requests between CivetWeb and Api.
//
// What the web view reads:
//   GET  /api/health                                     {"status", "protocol", "role"}; no token
//   GET  /api/adapters                                   names, version counts, aliases
//   GET  /api/versions?name=&filter=&sort=&offset=&limit= a page of version summaries (each
//                                                        with its scores' scales) and the total;
//                                                        &detail=full: whole records
//   GET  /api/adapters/NAME/versions/N                   one version's full record
//   GET  /api/adapters/NAME/versions/N/files/PATH        a file of the version, by its digest
//   GET  /api/adapters/NAME/versions/N/eval              its evaluation outputs (prompt,
//                                                        reference, prediction per example)
//   GET  /api/adapters/NAME/history                      alias moves, oldest first
//   GET  /api/diff?from=REF&to=REF                       what differs between two versions
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
//   POST /api/adapters/NAME/aliases/ALIAS                {"version": N, "expect_version": M,
//                                                        "override_reason": TEXT (an admin's)}
// and everything a registry's client does (registry/wire.h): runs, metrics, uploads, versions,
// datasets, gc, verify, backup, tokens, reviews, policies and promotion requests.
//
// Every path segment and query value is checked by grammar before any lookup (names, aliases,
// versions, run ids, digests); files are found through the version's manifest, never by a path
// on disk. Errors are JSON {"error": "..."} with the statuses wire.h lists.
//
// Threads: Handle may be called from any number of threads at once (the registry serialises
// writes). Security: every request must name this server in its Host (a page of another site
// whose name was made to resolve to this address, DNS rebinding, sends its own name). Every
// request but /api/health needs a token (Authorization: Bearer TOKEN) whose role covers it
// (registry.h Role: read for GET, write for runs, versions and datasets, promote for aliases,
// admin for gc, verify, backup and tokens), except reads when the server opens them; a POST or
// PUT a browser sends with an Origin must come from this server's. Writes are recorded as made by
// the token's name. Tokens are never logged.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "registry/registry.h"

namespace tune {

class LocalRegistry;

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

// Who may call the server besides the registry's own tokens.
struct ServerAccess {
  // The token this run of the server was started with: the owner's, with the admin role,
  // recorded as "owner". Not empty.
  std::string owner_token;
  bool open_reads = false;  // reads without a token (--open-reads)
};

class Api {
 public:
  // `registry` must outlive the Api.
  Api(LocalRegistry& registry, ServerAccess access, ServerNames names);

  // A 403 when the request's Host does not name this server (for every path, not only /api/).
  std::optional<HttpResponse> RefuseHost(const HttpRequest& request) const;
  // The most body bytes the request may send, from its method, path and token (the body is not
  // read yet): a chunk for an upload, a record for a client with the write role, a little for
  // anyone else.
  size_t BodyLimit(const HttpRequest& request) const;
  HttpResponse Handle(const HttpRequest& request) const;

  static constexpr size_t kMaxBodyBytes = 64 * 1024;  // a request without a writing token

  // Who sent a request, by its token.
  struct Caller {
    std::string name;          // the token's name; "owner" for the server's own; empty: no token
    std::optional<Role> role;  // nullopt: no token, or one that is not this server's
    bool presented = false;    // a token was sent (a wrong one is refused, not ignored)
  };
  Caller Identify(const HttpRequest& request) const;

 private:
  HttpResponse Get(const HttpRequest& request, const std::vector<std::string>& parts,
                   const Caller& caller) const;
  HttpResponse Post(const HttpRequest& request, const std::vector<std::string>& parts,
                    const Caller& caller) const;
  HttpResponse Put(const HttpRequest& request, const std::vector<std::string>& parts,
                   const Caller& caller) const;
  // The registry's client protocol (wire.h), api_client.cpp. nullopt: not one of its paths.
  std::optional<HttpResponse> GetForClient(const HttpRequest& request,
                                           const std::vector<std::string>& parts,
                                           const Caller& caller) const;
  std::optional<HttpResponse> PostForClient(const HttpRequest& request,
                                            const std::vector<std::string>& parts,
                                            const Caller& caller) const;
  // Reviews, policies and promotion requests (wire.h), api_review.cpp. nullopt: not one of
  // their paths.
  std::optional<HttpResponse> GetForReviews(const HttpRequest& request,
                                            const std::vector<std::string>& parts,
                                            const Caller& caller) const;
  std::optional<HttpResponse> PostForReviews(const HttpRequest& request,
                                             const std::vector<std::string>& parts,
                                             const Caller& caller) const;
  std::optional<HttpResponse> RefuseCrossOrigin(const HttpRequest& request) const;
  bool HasAdapter(const std::string& name) const;
  // Every sweep the registry's runs name (or only `only`), as JSON.
  nlohmann::json Sweeps(const std::string& only) const;

  LocalRegistry& registry_;
  ServerAccess access_;
  ServerNames names_;
  // Object bytes received in chunks since the server started (in /api/health for an admin): what
  // shows that a client sent only what the server lacked.
  mutable std::atomic<int64_t> object_bytes_received_{0};
};

// Thrown inside Api when the caller's token does not allow the request: 401 without a token, 403
// with one below `needed`.
struct NotAllowed {
  Role needed;
};
void Require(const Api::Caller& caller, Role needed);

// A JSON error response: {"error": message}.
HttpResponse ErrorResponse(int status, const std::string& message);

}  // namespace tune
