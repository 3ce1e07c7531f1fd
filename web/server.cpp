#include "web/server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string_view>
#include <thread>

#include "registry/registry.h"
#include "util/error.h"
#include "web/api.h"
#include "web/assets.h"

namespace tune {
namespace {

// Sent with every response: no framing, no sniffing, no referrer, scripts and styles from this
// server only (the UI has no inline script or style).
constexpr const char* kSecurityHeaders =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n";

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

void Send(mg_connection* conn, const HttpResponse& response, bool head) {
  std::string extra;
  for (const auto& [name, value] : response.headers) extra += name + ": " + value + "\r\n";
  if (response.file) {
    extra += kSecurityHeaders;
    mg_send_mime_file2(conn, response.file->c_str(), response.content_type.c_str(), extra.c_str());
    return;
  }
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\n%s%sConnection: close\r\n\r\n",
            response.status, mg_get_response_code_text(conn, response.status),
            response.content_type.c_str(), response.body.size(), kSecurityHeaders, extra.c_str());
  if (!head) mg_write(conn, response.body.data(), response.body.size());
}

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

}  // namespace

class WebServer::Impl {
 public:
  Impl(std::unique_ptr<Registry> registry_in, const ServeOptions& options)
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

  int Answer(mg_connection* conn) {
    const mg_request_info* info = mg_get_request_info(conn);
    const bool head = std::string_view(info->request_method) == "HEAD";
    if (!IsPlainPath(info->local_uri_raw != nullptr ? info->local_uri_raw : "")) {
      // CivetWeb would resolve it to another resource than it names: refused instead.
      Send(conn, ErrorResponse(400, "the path holds '..' or '\\'"), head);
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
    if (info->content_length > static_cast<long long>(Api::kMaxBodyBytes)) {
      Send(conn,
           ErrorResponse(413, "request body over " + std::to_string(Api::kMaxBodyBytes) + " bytes"),
           head);
      return 413;
    }
    char buffer[4096];
    for (int n; request.body.size() <= Api::kMaxBodyBytes &&
                (n = mg_read(conn, buffer, sizeof(buffer))) > 0;) {
      request.body.append(buffer, static_cast<size_t>(n));
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
    Send(conn, response, head);
    return response.status;
  }

  std::unique_ptr<Registry> registry;
  ServeOptions options;
  std::unique_ptr<Api> api;
  mg_context* context = nullptr;
  int port = 0;
};

std::unique_ptr<WebServer> WebServer::Start(const ServeOptions& options) {
  if (options.token.empty()) throw UserError("tune serve needs a token for promotions");
  static std::once_flag civetweb_ready;
  std::call_once(civetweb_ready, [] { mg_init_library(0); });
  auto impl = std::make_unique<Impl>(
      Registry::Open(options.registry, Registry::OpenMode::kReadWrite), options);

  const int port = options.port != 0 ? options.port : FreePort(options.host);
  const std::string listen = options.host + ":" + std::to_string(port);
  const char* settings[] = {"listening_ports",
                            listen.c_str(),
                            "request_timeout_ms",
                            "30000",
                            "enable_directory_listing",
                            "no",
                            nullptr};
  mg_callbacks callbacks{};
  // CivetWeb's own messages are kept for the error Start gives, not printed.
  static std::mutex message_mutex;
  static std::string last_message;
  callbacks.log_message = [](const mg_connection*, const char* message) {
    std::lock_guard lock(message_mutex);
    last_message = message;
    return 1;
  };
  impl->context = mg_start(&callbacks, nullptr, settings);
  if (impl->context == nullptr) {
    std::lock_guard lock(message_mutex);
    throw UserError("cannot listen on " + listen + " (" + last_message +
                    "): is the port in use, or the address not this machine's? choose another "
                    "with --port or --host");
  }
  mg_server_port ports[4] = {};
  if (mg_get_server_ports(impl->context, 4, ports) < 1) {
    throw UserError("cannot listen on " + listen + ": no port was bound");
  }
  impl->port = ports[0].port;
  const std::string self = "http://" + options.host + ":" + std::to_string(impl->port);
  std::vector<std::string> origins = {self};
  if (options.host == "127.0.0.1") {
    origins.push_back("http://localhost:" + std::to_string(impl->port));
  }
  impl->api = std::make_unique<Api>(*impl->registry, options.token, origins);
  mg_set_request_handler(impl->context, "/", &Impl::Handle, impl.get());
  return std::unique_ptr<WebServer>(new WebServer(std::move(impl)));
}

WebServer::WebServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WebServer::~WebServer() = default;

int WebServer::port() const { return impl_->port; }

std::string WebServer::url() const {
  return "http://" + impl_->options.host + ":" + std::to_string(impl_->port);
}

}  // namespace tune
