// What Debian's CivetWeb 1.15 needs to serve TLS with OpenSSL 3.
//
// CivetWeb loads OpenSSL when it starts (dlopen("libssl.so"), then dlsym of each function by its
// OpenSSL 1.1 name). OpenSSL 3 no longer exports SSL_get_peer_certificate (now a macro for
// SSL_get1_peer_certificate), so CivetWeb's pointer to it stays NULL, and the first TLS connection
// calls it and crashes. This library's SONAME is "libssl.so": loaded before CivetWeb
// (web/server.cpp), it is the "libssl.so" CivetWeb's dlopen finds, and dlsym finds every other
// function in the real libssl it depends on.
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate

// The peer's certificate, which the caller frees: what OpenSSL 1.1's function did.
extern "C" __attribute__((visibility("default"))) X509* SSL_get_peer_certificate(const SSL* ssl) {
  return SSL_get1_peer_certificate(ssl);
}
