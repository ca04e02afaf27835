#include "proxy/tls/tls_inspector.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>

#include <algorithm>

namespace Proxy::Tls {
namespace {

struct HelloState {
  bool seen = false;
  std::string server_name;
};

// The server_name extension body (RFC 6066): a 2-byte list length, then entries of a 1-byte
// type and a 2-byte length-prefixed name. OpenSSL hands us the extension's bytes; it has no
// accessor for the name before its own extension processing, which runs after this callback.
std::string hostNameFromExtension(const unsigned char* data, size_t length) {
  if (length < 2) {
    return {};
  }
  size_t list_length = (static_cast<size_t>(data[0]) << 8) | data[1];
  size_t pos = 2;
  const size_t end = std::min(length, 2 + list_length);
  while (pos + 3 <= end) {
    const unsigned type = data[pos];
    const size_t name_length = (static_cast<size_t>(data[pos + 1]) << 8) | data[pos + 2];
    pos += 3;
    if (pos + name_length > end) {
      return {};
    }
    if (type == TLSEXT_NAMETYPE_host_name) {
      return std::string(reinterpret_cast<const char*>(data + pos), name_length);
    }
    pos += name_length;
  }
  return {};
}

int clientHelloCallback(SSL* ssl, int* alert, void*) {
  auto* state = static_cast<HelloState*>(SSL_get_app_data(ssl));
  state->seen = true;
  const unsigned char* ext = nullptr;
  size_t ext_length = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &ext_length) == 1) {
    state->server_name = hostNameFromExtension(ext, ext_length);
  }
  *alert = SSL_AD_INTERNAL_ERROR;
  return SSL_CLIENT_HELLO_ERROR;  // seen enough: stop the throwaway handshake here
}

SSL_CTX* inspectorContext() {
  // Configured once, then only used to create SSLs (thread-safe).
  static SSL_CTX* const ctx = [] {
    SSL_CTX* c = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_client_hello_cb(c, &clientHelloCallback, nullptr);
    // Any version a client may offer is inspected, even ones the chains will then refuse.
    SSL_CTX_set_min_proto_version(c, 0);
    return c;
  }();
  return ctx;
}

}  // namespace

ClientHelloInfo inspectClientHello(const uint8_t* data, size_t length) {
  ClientHelloInfo info;
  if (length == 0) {
    return info;
  }
  // Not a TLS handshake record (content type 22): plaintext, decided on the first byte as
  // Envoy does, without waiting for more.
  if (data[0] != 0x16) {
    info.result = ClientHelloInfo::Result::NotTls;
    return info;
  }
  SSL* ssl = SSL_new(inspectorContext());
  if (ssl == nullptr) {
    info.result = ClientHelloInfo::Result::NotTls;
    return info;
  }
  HelloState state;
  SSL_set_app_data(ssl, &state);
  BIO* rbio = BIO_new_mem_buf(data, static_cast<int>(length));
  BIO_set_mem_eof_return(rbio, -1);  // the end of what we have is "more may come"
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_accept_state(ssl);
  const int rc = SSL_do_handshake(ssl);
  const int error = SSL_get_error(ssl, rc);
  SSL_free(ssl);
  ERR_clear_error();
  if (state.seen) {
    info.result = ClientHelloInfo::Result::Tls;
    info.server_name = std::move(state.server_name);
  } else if (error == SSL_ERROR_WANT_READ && length < kMaxClientHelloSize) {
    info.result = ClientHelloInfo::Result::NeedMoreData;
  } else {
    info.result = ClientHelloInfo::Result::NotTls;
  }
  return info;
}

}  // namespace Proxy::Tls
