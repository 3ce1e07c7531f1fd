// An HTTP(S) client for one registry server (libcurl), used by the remote registry. Private to
// the registry.
//
// Threads: one HttpClient may be used from any number of threads at once; each request runs on
// the calling thread with a connection of its own. Errors: a server that cannot be reached, a
// TLS handshake that fails, a request cut off are RegistryUnreachable (registry.h), whose message
// says which and what to do; an answer of any status is returned, not thrown.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace tune::registry_internal {

struct HttpClientOptions {
  std::string base_url;  // scheme://host:port, no trailing slash
  std::string token;     // sent as Authorization: Bearer TOKEN when not empty
  std::string ca_file;   // PEM file of the CA to trust for https (empty: the system's)
  std::chrono::seconds connect_timeout{10};
  // A request whose transfer stalls (under 1 KiB/s) this long is cut off.
  std::chrono::seconds stall_timeout{60};
};

struct HttpAnswer {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options);

  const std::string& base_url() const { return options_.base_url; }

  HttpAnswer Get(std::string_view target) const;
  HttpAnswer Post(std::string_view target, std::string_view json) const;
  // PUT of raw bytes (application/octet-stream), with extra request headers.
  HttpAnswer Put(std::string_view target, std::string_view bytes,
                 const std::map<std::string, std::string>& headers) const;
  // GET whose body goes to `sink` as it arrives (sink returns false to stop), from byte `from`
  // on (a Range request when from > 0). The answer's body is left empty unless the status is
  // not 200 or 206 (then it holds the error).
  HttpAnswer Download(std::string_view target, int64_t from,
                      const std::function<bool(const char* data, size_t size)>& sink) const;

 private:
  HttpAnswer Perform(std::string_view method, std::string_view target, std::string_view body,
                     const std::map<std::string, std::string>& headers,
                     const std::function<bool(const char*, size_t)>* sink) const;

  HttpClientOptions options_;
};

// `text` with every character outside unreserved ones percent-encoded, for a path segment or a
// query value.
std::string UrlEncode(std::string_view text);

}  // namespace tune::registry_internal
