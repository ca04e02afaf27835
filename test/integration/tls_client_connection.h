#pragma once

// A blocking HTTPS/1.1 client connection over OpenSSL for integration tests: no verification
// (the tests look at which certificate the server presented), SNI "localhost", keep-alive (several
// requests on one connection), so that a test can hold a connection open across a certificate
// rotation.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace Proxy::Integration {

class TlsClientConnection {
 public:
  static std::unique_ptr<TlsClientConnection> connect(uint32_t port) {
    auto c = std::unique_ptr<TlsClientConnection>(new TlsClientConnection());
    c->fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{5, 0};
    ::setsockopt(c->fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(c->fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return nullptr;
    }
    c->ctx_ = SSL_CTX_new(TLS_client_method());
    c->ssl_ = SSL_new(c->ctx_);
    SSL_set_fd(c->ssl_, c->fd_);
    SSL_set_tlsext_host_name(c->ssl_, "localhost");
    if (SSL_connect(c->ssl_) != 1) {
      ERR_clear_error();
      return nullptr;
    }
    return c;
  }
  ~TlsClientConnection() {
    if (ssl_ != nullptr) {
      SSL_free(ssl_);
    }
    if (ctx_ != nullptr) {
      SSL_CTX_free(ctx_);
    }
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }

  // The CN of the certificate the server presented ("server", "server2").
  std::string peerCommonName() const {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (cert == nullptr) {
      return "";
    }
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
    X509_free(cert);
    return cn;
  }

  // GET `path`; the status, or -1 when the connection failed.
  int get(const std::string& path) {
    const std::string request = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: localhost\r\n\r\n");
    if (SSL_write(ssl_, request.data(), static_cast<int>(request.size())) <= 0) {
      return -1;
    }
    std::string in;
    char buf[4096];
    size_t header_end = std::string::npos;
    size_t content_length = 0;
    while (true) {
      if (header_end != std::string::npos && in.size() >= header_end + 4 + content_length) {
        break;
      }
      const int n = SSL_read(ssl_, buf, sizeof(buf));
      if (n <= 0) {
        return -1;
      }
      in.append(buf, static_cast<size_t>(n));
      if (header_end == std::string::npos &&
          (header_end = in.find("\r\n\r\n")) != std::string::npos) {
        const std::string head = absl::AsciiStrToLower(in.substr(0, header_end + 2));
        const size_t at = head.find("content-length:");
        if (at != std::string::npos) {
          (void)absl::SimpleAtoi(
              absl::StripAsciiWhitespace(head.substr(at + 15, head.find("\r\n", at) - at - 15)),
              &content_length);
        }
      }
    }
    int status = -1;
    return in.size() > 12 && absl::SimpleAtoi(in.substr(9, 3), &status) ? status : -1;
  }

  // Send `bytes` in one TLS record, then reset the connection (SO_LINGER 0): the server finds
  // the record and the RST queued together. The connection is unusable afterwards.
  bool sendThenReset(const std::string& bytes) {
    if (SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) <= 0) {
      return false;
    }
    linger reset{/*l_onoff=*/1, /*l_linger=*/0};
    const bool ok = ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)) == 0;
    ::close(fd_);
    fd_ = -1;
    return ok;
  }

 private:
  TlsClientConnection() = default;
  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

}  // namespace Proxy::Integration
