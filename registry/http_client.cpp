#include "registry/http_client.h"

#include <curl/curl.h>

#include <cctype>
#include <memory>
#include <mutex>

#include "registry/registry.h"

namespace tune::registry_internal {
namespace {

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Transfer {
  std::string body;
  std::map<std::string, std::string> headers;
  const std::function<bool(const char*, size_t)>* sink = nullptr;
  bool sinking = false;  // the status is 200 or 206: the body goes to the sink
  std::string_view upload;
  size_t uploaded = 0;
};

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto& transfer = *static_cast<Transfer*>(user);
  const std::string_view line(data, size * count);
  if (line.starts_with("HTTP/")) {
    transfer.headers.clear();  // a 100 Continue, or a redirect's, comes first
    const size_t space = line.find(' ');
    const int status = space == std::string_view::npos ? 0 : std::atoi(line.data() + space + 1);
    transfer.sinking = transfer.sink != nullptr && (status == 200 || status == 206);
    return line.size();
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return line.size();
  std::string name(line.substr(0, colon));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  transfer.headers[name] = std::string(value);
  return line.size();
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto& transfer = *static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  if (transfer.sinking) return (*transfer.sink)(data, bytes) ? bytes : 0;
  transfer.body.append(data, bytes);
  return bytes;
}

size_t OnUpload(char* buffer, size_t size, size_t count, void* user) {
  auto& transfer = *static_cast<Transfer*>(user);
  const size_t n = std::min(size * count, transfer.upload.size() - transfer.uploaded);
  std::copy_n(transfer.upload.data() + transfer.uploaded, n, buffer);
  transfer.uploaded += n;
  return n;
}

// What went wrong reaching the server, in words a person can act on.
std::string Explain(CURLcode code, const std::string& detail, const std::string& url,
                    const std::string& ca_file) {
  const bool https = url.starts_with("https://");
  const std::string what = "cannot reach the registry server at " + url + ": ";
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
      return what + "its host name does not resolve (" + detail + "); check the URL";
    case CURLE_COULDNT_CONNECT:
      return what + "the connection was refused (" + detail +
             "); is `tune serve` running there, on that port?";
    case CURLE_OPERATION_TIMEDOUT:
      return what + "it did not answer in time (" + detail +
             "); check the address, the network and any firewall between";
    case CURLE_SSL_CONNECT_ERROR:
      return what + "the TLS handshake failed (" + detail + ")" +
             (detail.find("wrong version number") != std::string::npos
                  ? "; the server speaks plain HTTP there: use http://"
                  : "; check the server's --tls-cert and the URL's port");
    case CURLE_PEER_FAILED_VERIFICATION:
      return what + "its certificate is not trusted (" + detail + "); " +
             (ca_file.empty() ? "pass the CA that signed it with TUNE_CA_FILE or [registry] "
                                "ca_file"
                              : "is " + ca_file + " the CA that signed it?");
    case CURLE_SSL_CACERT_BADFILE:
      return what + "the CA file " + ca_file + " cannot be read (" + detail +
             "); point TUNE_CA_FILE or [registry] ca_file at a PEM file";
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
      return what + "the connection closed without an answer (" + detail + ")" +
             (https ? std::string() : "; if the server serves TLS, use https://");
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return "registry URL " + url + " is not an http:// or https:// URL (" + detail +
             "); write it as https://HOST:PORT";
    default:
      return what + detail;
  }
}

}  // namespace

std::string UrlEncode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string encoded;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || c == '-' || c == '_' || c == '.' || c == '~') {
      encoded += c;
    } else {
      encoded.append(1, '%').append(1, kHex[byte >> 4]).append(1, kHex[byte & 15]);
    }
  }
  return encoded;
}

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)) {
  InitCurlOnce();
  while (options_.base_url.ends_with('/')) options_.base_url.pop_back();
}

HttpAnswer HttpClient::Get(std::string_view target) const {
  return Perform("GET", target, {}, {}, nullptr);
}

HttpAnswer HttpClient::Post(std::string_view target, std::string_view json) const {
  return Perform("POST", target, json, {{"Content-Type", "application/json"}}, nullptr);
}

HttpAnswer HttpClient::Put(std::string_view target, std::string_view bytes,
                           const std::map<std::string, std::string>& headers) const {
  std::map<std::string, std::string> all = headers;
  all.emplace("Content-Type", "application/octet-stream");
  return Perform("PUT", target, bytes, all, nullptr);
}

HttpAnswer HttpClient::Download(std::string_view target, int64_t from,
                                const std::function<bool(const char*, size_t)>& sink) const {
  std::map<std::string, std::string> headers;
  if (from > 0) headers["Range"] = "bytes=" + std::to_string(from) + "-";
  return Perform("GET", target, {}, headers, &sink);
}

HttpAnswer HttpClient::Perform(std::string_view method, std::string_view target,
                               std::string_view body,
                               const std::map<std::string, std::string>& headers,
                               const std::function<bool(const char*, size_t)>* sink) const {
  const std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw RegistryUnreachable("cannot start an HTTP client (libcurl); out of memory?");
  const std::string url = options_.base_url + std::string(target);
  Transfer transfer;
  transfer.sink = sink;
  transfer.upload = body;
  char error[CURL_ERROR_SIZE] = {};
  CURL* handle = curl.get();
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count() * 1000));
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME,
                   static_cast<long>(options_.stall_timeout.count()));
  if (!options_.ca_file.empty()) curl_easy_setopt(handle, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(handle, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &transfer);
  if (method == "POST") {
    curl_easy_setopt(handle, CURLOPT_POST, 1L);
    curl_easy_setopt(handle, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  } else if (method == "PUT") {
    curl_easy_setopt(handle, CURLOPT_UPLOAD, 1L);
    // Larger writes than the 64 KiB default: a chunk of megabytes crosses in far fewer calls.
    curl_easy_setopt(handle, CURLOPT_UPLOAD_BUFFERSIZE, 2L << 20);
    curl_easy_setopt(handle, CURLOPT_READFUNCTION, &OnUpload);
    curl_easy_setopt(handle, CURLOPT_READDATA, &transfer);
    curl_easy_setopt(handle, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_slist* list = nullptr;
  // No "Expect: 100-continue" round trip before a body: the server answers at once anyway.
  list = curl_slist_append(list, "Expect:");
  if (!options_.token.empty()) {
    list = curl_slist_append(list, ("Authorization: Bearer " + options_.token).c_str());
  }
  for (const auto& [name, value] : headers) {
    list = curl_slist_append(list, (name + ": " + value).c_str());
  }
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, list);
  const CURLcode code = curl_easy_perform(handle);
  curl_slist_free_all(list);
  HttpAnswer answer;
  if (code == CURLE_WRITE_ERROR && transfer.sinking) {
    // The sink stopped the transfer: what arrived is the caller's to judge.
  } else if (code != CURLE_OK) {
    throw RegistryUnreachable(Explain(code, error[0] != '\0' ? error : curl_easy_strerror(code),
                                      options_.base_url, options_.ca_file));
  }
  long status = 0;
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &status);
  answer.status = static_cast<int>(status);
  answer.body = std::move(transfer.body);
  answer.headers = std::move(transfer.headers);
  return answer;
}

}  // namespace tune::registry_internal
