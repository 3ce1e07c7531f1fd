#include "web/server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

#include "registry/local_registry.h"
#include "util/error.h"
#include "util/sha256.h"
#include "web/api.h"
#include "web/assets.h"

namespace tune {
namespace {

// Sent with every response, CivetWeb's own error pages included: no framing, no sniffing, no
// referrer, scripts and styles from this server only (the UI has no inline script or style).
constexpr const char* kSecurityHeaders =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n";

// Workers: each connection holds one while it is read and answered. Enough for a team's browsers,
// clients and trials at once, and for hundreds of idle connections besides (bench/web.sh).
constexpr int kWorkerThreads = 512;
// How long a client may take to send its request, and to take each part of the answer: a
// client that sends nothing, or a body slower than this, loses its worker after it.
constexpr int kRequestTimeoutMs = 10'000;

std::string UrlDecode(std::string_view text) {
  std::string decoded(text.size() + 1, '\0');
  const int length = mg_url_decode(text.data(), static_cast<int>(text.size()), decoded.data(),
                                   static_cast<int>(decoded.size()), /*is_form_url_encoded=*/1);
  decoded.resize(length < 0 ? 0 : static_cast<size_t>(length));
  return decoded;
}

std::map<std::string, std::string> ParseQuery(const char* query) {
  std::map<std::string, std::string> values;
  if (query == nullptr) return values;
  std::string_view rest(query);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const size_t equals = pair.find('=');
    values[UrlDecode(pair.substr(0, equals))] =
        equals == std::string_view::npos ? std::string() : UrlDecode(pair.substr(equals + 1));
  }
  return values;
}

void SendHead(mg_connection* conn, int status, const std::string& content_type, int64_t length,
              const std::string& extra) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %lld\r\n"
            "Cache-Control: no-store\r\n%s%sConnection: close\r\n\r\n",
            status, mg_get_response_code_text(conn, status), content_type.c_str(),
            static_cast<long long>(length), kSecurityHeaders, extra.c_str());
}

void SendBody(mg_connection* conn, const HttpResponse& response, bool head) {
  std::string extra;
  for (const auto& [name, value] : response.headers) extra += name + ": " + value + "\r\n";
  SendHead(conn, response.status, response.content_type, static_cast<int64_t>(response.body.size()),
           extra);
  if (!head) mg_write(conn, response.body.data(), response.body.size());
}

// A byte range of a body of `size` bytes: [first, last].
struct ByteRange {
  int64_t first = 0;
  int64_t last = 0;
};

// The Range header's one range ("bytes=A-B", "bytes=A-", "bytes=-N"). nullopt: no range asked,
// or a form this server answers with the whole body (several ranges, other units); a range it
// cannot satisfy (past the end, reversed) sets `unsatisfiable`.
std::optional<ByteRange> ParseRange(std::string_view header, int64_t size, bool& unsatisfiable) {
  unsatisfiable = false;
  if (!header.starts_with("bytes=") || header.find(',') != std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view spec = header.substr(6);
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto number = [](std::string_view digits) -> std::optional<int64_t> {
    int64_t value = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() ||
        value < 0) {
      return std::nullopt;
    }
    return value;
  };
  const std::string_view from = spec.substr(0, dash);
  const std::string_view to = spec.substr(dash + 1);
  if (from.empty()) {  // the last N bytes
    const std::optional<int64_t> count = number(to);
    if (!count) return std::nullopt;
    if (*count == 0 || size == 0) {
      unsatisfiable = true;
      return std::nullopt;
    }
    return ByteRange{std::max<int64_t>(0, size - *count), size - 1};
  }
  const std::optional<int64_t> first = number(from);
  const std::optional<int64_t> last = to.empty() ? std::optional<int64_t>(size - 1) : number(to);
  if (!first || !last) return std::nullopt;
  if (*first >= size || *last < *first) {
    unsatisfiable = true;
    return std::nullopt;
  }
  return ByteRange{*first, std::min(*last, size - 1)};
}

// Sends a stored object, checking its bytes against its SHA-256 (registry.h: bytes leave the
// registry only checked). A whole body is hashed as it goes and its last chunk held back until
// the hash is known: on a mismatch the connection is cut, so the client has fewer bytes than
// Content-Length promised and keeps nothing. A range is sent only after the whole object was
// checked. A wrong size is known before the first byte: 500. Every damage is logged.
class ObjectSender {
 public:
  ObjectSender(mg_connection* conn, const HttpResponse& response, const HttpRequest& request,
               bool head)
      : conn_(conn),
        response_(response),
        object_(*response.object),
        request_(request),
        head_(head) {}

  int Send() {
    const int fd = ::open(object_.path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat status {};
    if (fd < 0 || ::fstat(fd, &status) != 0 || status.st_size != object_.size_bytes) {
      if (fd >= 0) ::close(fd);
      return Damaged(fd < 0 ? "is missing or unreadable"
                            : "has " + std::to_string(status.st_size) + " bytes, the record says " +
                                  std::to_string(object_.size_bytes));
    }
    fd_ = fd;
    struct Close {
      int fd;
      ~Close() { ::close(fd); }
    } close{fd};

    std::string extra = "Accept-Ranges: bytes\r\n";
    for (const auto& [name, value] : response_.headers) extra += name + ": " + value + "\r\n";
    const auto range_header = request_.headers.find("range");
    bool unsatisfiable = false;
    const std::optional<ByteRange> range =
        range_header == request_.headers.end()
            ? std::nullopt
            : ParseRange(range_header->second, object_.size_bytes, unsatisfiable);
    if (unsatisfiable) {
      const HttpResponse refused = ErrorResponse(
          416, "the range is outside the file's " + std::to_string(object_.size_bytes) + " bytes");
      SendHead(conn_, 416, refused.content_type, static_cast<int64_t>(refused.body.size()),
               "Content-Range: bytes */" + std::to_string(object_.size_bytes) + "\r\n");
      if (!head_) mg_write(conn_, refused.body.data(), refused.body.size());
      return 416;
    }
    if (range) {
      if (std::optional<std::string> actual = HashWhole()) return Damaged(*actual);
      SendHead(conn_, 206, response_.content_type, range->last - range->first + 1,
               extra + "Content-Range: bytes " + std::to_string(range->first) + "-" +
                   std::to_string(range->last) + "/" + std::to_string(object_.size_bytes) + "\r\n");
      if (!head_) Stream(range->first, range->last + 1, /*hash=*/false);
      return 206;
    }
    SendHead(conn_, 200, response_.content_type, object_.size_bytes, extra);
    if (!head_) Stream(0, object_.size_bytes, /*hash=*/true);
    return 200;
  }

 private:
  static constexpr size_t kChunkBytes = size_t{1} << 20;

  int Damaged(const std::string& how) {
    const std::string message = "object sha256:" + object_.sha256 + " (" + object_.what + ") " +
                                how + ": it was not sent; run `tune registry verify`";
    std::cerr << "error: " << message << std::endl;
    SendBody(conn_, ErrorResponse(500, message), head_);
    return 500;
  }

  // The digest of the whole file when it is not the object's; nullopt when it is.
  std::optional<std::string> HashWhole() {
    Sha256 hash;
    std::vector<char> buffer(kChunkBytes);
    for (int64_t at = 0; at < object_.size_bytes;) {
      const ssize_t n = ::pread(fd_, buffer.data(), buffer.size(), at);
      if (n <= 0) return "cannot be read";
      hash.Update(std::string_view(buffer.data(), static_cast<size_t>(n)));
      at += n;
    }
    const std::string actual = hash.FinishHex();
    if (actual == object_.sha256) return std::nullopt;
    return "is corrupted: its bytes hash to sha256:" + actual;
  }

  // Sends bytes [begin, end). With `hash`, [begin, end) is the whole object, and its last chunk
  // goes only when the hash of everything matches.
  void Stream(int64_t begin, int64_t end, bool hash) {
    Sha256 digest;
    std::vector<char> buffer(kChunkBytes);
    std::vector<char> held;
    for (int64_t at = begin; at < end;) {
      const size_t want = static_cast<size_t>(std::min<int64_t>(end - at, kChunkBytes));
      const ssize_t n = ::pread(fd_, buffer.data(), want, at);
      if (n <= 0) {
        Log("cannot be read after " + std::to_string(at) + " bytes");
        return;
      }
      at += n;
      if (!hash) {
        if (mg_write(conn_, buffer.data(), static_cast<size_t>(n)) <= 0) return;
        continue;
      }
      digest.Update(std::string_view(buffer.data(), static_cast<size_t>(n)));
      if (!held.empty() && mg_write(conn_, held.data(), held.size()) <= 0) return;
      held.assign(buffer.data(), buffer.data() + n);
    }
    if (!hash) return;
    const std::string actual = digest.FinishHex();
    if (actual != object_.sha256) {
      Log("is corrupted: its bytes hash to sha256:" + actual +
          "; the connection was cut before its last bytes");
      return;
    }
    if (!held.empty()) mg_write(conn_, held.data(), held.size());
  }

  void Log(const std::string& how) const {
    std::cerr << "error: object sha256:" << object_.sha256 << " (" << object_.what << ") " << how
              << "; run `tune registry verify`" << std::endl;
  }

  mg_connection* conn_;
  const HttpResponse& response_;
  const ObjectBody& object_;
  const HttpRequest& request_;
  bool head_;
  int fd_ = -1;
};

// Whether a decoded request path, before CivetWeb resolves "..", names one resource as written.
// (A NUL cannot be seen here: CivetWeb's decoded path ends at it, so "1%00/x" is read as "1".)
bool IsPlainPath(std::string_view decoded) {
  return decoded.find("..") == std::string_view::npos &&
         decoded.find('\\') == std::string_view::npos;
}

// A port the kernel considers free on `host` now (CivetWeb does not take port 0). Another
// process could take it before CivetWeb binds; Start then fails and says so.
int FreePort(const std::string& host) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = 0;
  if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
    ::close(fd);
    return 0;
  }
  socklen_t length = sizeof(address);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

// Opens and closes a TCP connection to `host`:`port`, whatever comes of it.
void Knock(const std::string& host, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) == 1) {
    ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  }
  ::close(fd);
}

bool IsLoopback(const in_addr& address) { return (ntohl(address.s_addr) >> 24) == 127; }

// The names a client may give this server: the bound address, and for the loopback address
// "localhost", for any other this machine's host name, for 0.0.0.0 every address of the machine
// too; then what --allow-host adds.
std::vector<std::string> NamesOfThisServer(const ServeOptions& options, const in_addr& bound) {
  std::vector<std::string> names = {options.host};
  const auto add = [&](std::string name) {
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!name.empty() && std::find(names.begin(), names.end(), name) == names.end()) {
      names.push_back(std::move(name));
    }
  };
  if (IsLoopback(bound) || bound.s_addr == htonl(INADDR_ANY)) add("localhost");
  if (!IsLoopback(bound)) {
    char hostname[256] = {};
    if (::gethostname(hostname, sizeof(hostname) - 1) == 0) add(hostname);
  }
  if (bound.s_addr == htonl(INADDR_ANY)) {
    ifaddrs* interfaces = nullptr;
    if (::getifaddrs(&interfaces) == 0) {
      for (const ifaddrs* it = interfaces; it != nullptr; it = it->ifa_next) {
        if (it->ifa_addr == nullptr || it->ifa_addr->sa_family != AF_INET) continue;
        char text[INET_ADDRSTRLEN] = {};
        const auto* address = reinterpret_cast<const sockaddr_in*>(it->ifa_addr);
        if (::inet_ntop(AF_INET, &address->sin_addr, text, sizeof(text)) != nullptr) add(text);
      }
      ::freeifaddrs(interfaces);
    }
  }
  for (const std::string& name : options.allowed_hosts) add(name);
  return names;
}

// Two Content-Length headers that differ: a request smuggled past a proxy reads one, CivetWeb
// the other.
bool HasConflictingLengths(const mg_request_info* info) {
  std::optional<std::string_view> seen;
  for (int i = 0; i < info->num_headers; ++i) {
    if (strcasecmp(info->http_headers[i].name, "Content-Length") != 0) continue;
    const std::string_view value = info->http_headers[i].value;
    if (seen && *seen != value) return true;
    seen = value;
  }
  return false;
}

}  // namespace

class WebServer::Impl {
 public:
  Impl(std::unique_ptr<LocalRegistry> registry_in, const ServeOptions& options)
      : registry(std::move(registry_in)), options(options) {}

  ~Impl() {
    if (context == nullptr) return;
    // CivetWeb's listening thread looks at its stop flag between polls of up to 2 s; a connection
    // ends the poll, so mg_stop returns in milliseconds instead of seconds.
    std::atomic<bool> stopped = false;
    std::thread stopper([&] {
      mg_stop(context);
      stopped = true;
    });
    const std::string address = options.host == "0.0.0.0" ? "127.0.0.1" : options.host;
    while (!stopped) {
      Knock(address, port);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stopper.join();
  }

  static int Handle(mg_connection* conn, void* self) {
    return static_cast<Impl*>(self)->Answer(conn);
  }

  // CivetWeb's own answers (a request it cannot parse) with this server's headers and a JSON
  // body like every other error. A body too large or too slow is answered by CivetWeb's own
  // page (with the security headers too, from additional_header): only that marks the
  // connection to close without first reading the rest of the body, which a client announcing
  // 10^12 bytes would make last until the timeout.
  static int HttpError(mg_connection* conn, int status, const char* message) {
    if (status == 408 || status == 413) return 1;
    SendBody(conn, ErrorResponse(status, message != nullptr ? message : "bad request"),
             /*head=*/false);
    return 0;
  }

  int Answer(mg_connection* conn) {
    const mg_request_info* info = mg_get_request_info(conn);
    const bool head = std::string_view(info->request_method) == "HEAD";
    if (!IsPlainPath(info->local_uri_raw != nullptr ? info->local_uri_raw : "")) {
      // CivetWeb would resolve it to another resource than it names: refused instead.
      SendBody(conn, ErrorResponse(400, "the path holds '..' or '\\'"), head);
      return 400;
    }
    if (HasConflictingLengths(info)) {
      SendBody(conn, ErrorResponse(400, "the request has two different Content-Length headers"),
               head);
      return 400;
    }
    HttpRequest request;
    request.method = info->request_method;
    request.path = info->local_uri != nullptr ? info->local_uri : "";
    request.query = ParseQuery(info->query_string);
    for (int i = 0; i < info->num_headers; ++i) {
      std::string name = info->http_headers[i].name;
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      request.headers[name] = info->http_headers[i].value;
    }
    if (std::optional<HttpResponse> refused = api->RefuseHost(request)) {
      SendBody(conn, *refused, head);
      return refused->status;
    }
    // Judged by the token before a byte of the body is read: only a client that may write sends
    // more than a little. Past the limit the connection closes after the answer.
    const size_t limit = api->BodyLimit(request);
    if (info->content_length > static_cast<long long>(limit)) {
      mg_send_http_error(conn, 413, "request body over %zu bytes", limit);
      return 413;
    }
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kRequestTimeoutMs);
    // Straight into the body when its length is known; in pieces of 64 KiB when it is not
    // (chunked), on the heap either way: CivetWeb's threads have small stacks (see below).
    const size_t known = info->content_length > 0 ? static_cast<size_t>(info->content_length) : 0;
    request.body.resize(known > 0 ? known : size_t{64} << 10);
    size_t got = 0;
    for (int n; got <= limit;) {
      if (got == request.body.size()) {
        if (known > 0) break;
        request.body.resize(2 * request.body.size());
      }
      n = mg_read(conn, request.body.data() + got, request.body.size() - got);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
      if (std::chrono::steady_clock::now() > deadline) {
        mg_send_http_error(conn, 408, "the request body took over %d seconds to arrive",
                           kRequestTimeoutMs / 1000);
        return 408;
      }
    }
    request.body.resize(got);
    if (request.body.size() > limit) {
      mg_send_http_error(conn, 413, "request body over %zu bytes", limit);
      return 413;
    }
    HttpResponse response;
    if (request.path.starts_with("/api/")) {
      // On a thread of its own: CivetWeb's threads have small fixed stacks (Debian builds it
      // with about 100 KiB), which parsing a large record under a sanitizer overflows.
      std::thread worker([&] {
        try {
          response = api->Handle(request);
        } catch (const std::exception& e) {
          response = ErrorResponse(500, std::string("internal error: ") + e.what());
        }
      });
      worker.join();
    } else if (const Asset* asset = FindAsset(request.path == "/" ? "/index.html" : request.path);
               asset != nullptr && (request.method == "GET" || head)) {
      response.content_type = asset->content_type;
      response.body.assign(asset->bytes, asset->size);
    } else {
      response = ErrorResponse(404, "no such page");
    }
    if (response.object) return ObjectSender(conn, response, request, head).Send();
    SendBody(conn, response, head);
    return response.status;
  }

  std::unique_ptr<LocalRegistry> registry;
  ServeOptions options;
  std::unique_ptr<Api> api;
  mg_context* context = nullptr;
  int port = 0;
};

namespace {

// Loads web/civetweb_tls.cpp's library (beside the plugins: <bin>/../lib/tune) before CivetWeb
// loads OpenSSL. Returns why TLS cannot be served, or "" when it can.
std::string LoadCivetWebTls() {
  char self[4096];
  const ssize_t length = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length <= 0) return "cannot find this executable (/proc/self/exe), so not the TLS library";
  const std::filesystem::path library =
      std::filesystem::path(std::string(self, static_cast<size_t>(length))).parent_path() /
      "../lib/tune/libtune_civetweb_tls.so";
  if (::dlopen(library.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
    const char* why = ::dlerror();
    return "cannot load " + library.lexically_normal().string() + " (" +
           (why != nullptr ? why : "unknown") +
           "), which TLS needs with this CivetWeb and OpenSSL 3; reinstall tune";
  }
  return "";
}

// CivetWeb takes the certificate and its key in one PEM file: a private copy of both, readable
// by this user only, removed once the server has read it.
class CombinedPem {
 public:
  CombinedPem(const std::filesystem::path& cert, const std::filesystem::path& key) {
    const auto read = [](const std::filesystem::path& file, const char* what) {
      std::ifstream in(file, std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      if (!in || text.str().find("-----BEGIN") == std::string::npos) {
        throw UserError(std::string("--tls-") + what + " " + file.string() +
                        ": cannot read a PEM file there; pass the server's " + what +
                        " in PEM form");
      }
      return text.str();
    };
    const std::string both = read(key, "key") + "\n" + read(cert, "cert");
    char name[] = "/tmp/tune-serve-tls-XXXXXX";
    const int fd = ::mkstemp(name);  // created 0600
    if (fd < 0) throw UserError("cannot write a temporary file in /tmp for the TLS certificate");
    path_ = name;
    const bool written = ::write(fd, both.data(), both.size()) == static_cast<ssize_t>(both.size());
    ::close(fd);
    if (!written) throw UserError("cannot write the TLS certificate to " + path_);
  }
  ~CombinedPem() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

std::unique_ptr<WebServer> WebServer::Start(const ServeOptions& options) {
  if (options.token.empty()) throw UserError("tune serve needs a token for its owner");
  in_addr bound{};
  if (::inet_pton(AF_INET, options.host.c_str(), &bound) != 1) {
    throw UserError("--host " + options.host +
                    " is not an IPv4 address; use 127.0.0.1 (this machine only), an address of "
                    "one of its interfaces, or 0.0.0.0 (all of them)");
  }
  const bool tls = !options.tls_cert.empty() || !options.tls_key.empty();
  if (tls && (options.tls_cert.empty() || options.tls_key.empty())) {
    throw UserError("--tls-cert and --tls-key go together: pass the certificate and its key");
  }
  if (!tls && !IsLoopback(bound) && !options.insecure_http) {
    throw UserError("serving " + options.host +
                    " without TLS would send tokens and adapters across the network in the "
                    "clear; pass --tls-cert and --tls-key, or --insecure-http on a network you "
                    "trust");
  }
  static std::once_flag civetweb_ready;
  static std::string tls_missing;  // why TLS cannot be served, if it cannot
  std::call_once(civetweb_ready, [] {
    tls_missing = LoadCivetWebTls();
    mg_init_library(MG_FEATURES_TLS);
  });
  if (tls && !tls_missing.empty()) throw UserError(tls_missing);
  auto impl = std::make_unique<Impl>(
      LocalRegistry::Open(options.registry, Registry::OpenMode::kReadWrite), options);

  const int port = options.port != 0 ? options.port : FreePort(options.host);
  const std::string listen = options.host + ":" + std::to_string(port) + (tls ? "s" : "");
  const std::string threads = std::to_string(kWorkerThreads);
  const std::string timeout = std::to_string(kRequestTimeoutMs);
  // CivetWeb's own answers (its error pages) carry the security headers too; its header
  // option takes them without the line break of the last.
  std::string additional_header = kSecurityHeaders;
  additional_header.resize(additional_header.size() - 2);
  std::optional<CombinedPem> pem;
  if (tls) pem.emplace(options.tls_cert, options.tls_key);
  std::vector<const char*> settings = {"listening_ports",
                                       listen.c_str(),
                                       "num_threads",
                                       threads.c_str(),
                                       "request_timeout_ms",
                                       timeout.c_str(),
                                       "enable_directory_listing",
                                       "no",
                                       "additional_header",
                                       additional_header.c_str()};
  if (pem) {
    settings.insert(settings.end(), {"ssl_certificate", pem->path().c_str(), "ssl_protocol_version",
                                     "4"});  // TLS 1.2 and later
  }
  settings.push_back(nullptr);
  mg_callbacks callbacks{};
  // CivetWeb's own messages are kept for the error Start gives, not printed.
  static std::mutex message_mutex;
  static std::string last_message;
  callbacks.log_message = [](const mg_connection*, const char* message) {
    std::lock_guard lock(message_mutex);
    last_message = message;
    return 1;
  };
  callbacks.http_error = &Impl::HttpError;
  impl->context = mg_start(&callbacks, nullptr, settings.data());
  if (impl->context == nullptr) {
    std::lock_guard lock(message_mutex);
    throw UserError(
        "cannot listen on " + listen + " (" + last_message + ")" +
        (tls ? ": is the certificate a PEM certificate, and the key its private key?" : "") +
        " is the port in use, or the address not this machine's? choose another "
        "with --port or --host");
  }
  mg_server_port ports[4] = {};
  if (mg_get_server_ports(impl->context, 4, ports) < 1) {
    throw UserError("cannot listen on " + listen + ": no port was bound");
  }
  impl->port = ports[0].port;
  ServerNames names;
  names.scheme = tls ? "https" : "http";
  names.port = impl->port;
  names.hosts = NamesOfThisServer(options, bound);
  impl->api = std::make_unique<Api>(*impl->registry,
                                    ServerAccess{options.token, options.open_reads}, names);
  mg_set_request_handler(impl->context, "/", &Impl::Handle, impl.get());
  return std::unique_ptr<WebServer>(new WebServer(std::move(impl)));
}

WebServer::WebServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WebServer::~WebServer() = default;

int WebServer::port() const { return impl_->port; }

std::string WebServer::url() const {
  const bool tls = !impl_->options.tls_cert.empty();
  return (tls ? "https://" : "http://") + impl_->options.host + ":" + std::to_string(impl_->port);
}

}  // namespace tune
