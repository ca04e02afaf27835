#include "proxy/tls/ssl_socket.h"

#include <openssl/err.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "proxy/common/assert.h"
#include "spdlog/spdlog.h"

namespace Proxy::Tls {
namespace {

// A TLS record's plaintext: the most one SSL_read/SSL_write moves.
constexpr uint64_t kRecordSize = 16384;

// SSL_get_error() needs the thread's error queue empty before the call it explains. It nearly
// always is (every failure below drains it), and ERR_clear_error() rewrites all 16 slots of
// the queue: ~840 instructions, twice per proxied HTTPS request (callgrind), against a peek
// that only looks at the queue's ends.
void clearErrorQueue() {
  if (ERR_peek_error() != 0) {
    ERR_clear_error();
  }
}

}  // namespace

SslSocket::SslSocket(ContextConstSharedPtr context, std::string_view alpn_fallback)
    : context_(std::move(context)), alpn_fallback_(alpn_fallback) {}

SslSocket::~SslSocket() {
  SSL_free(ssl_);
}

void SslSocket::setTransportSocketCallbacks(Network::TransportSocketCallbacks& callbacks) {
  callbacks_ = &callbacks;
  if (context_ == nullptr) {
    // Envoy's NotReadySslSocket: a secret of the context has not arrived (SDS). The connection
    // closes at its first I/O, counted by the provider (*_context_secrets_not_ready).
    state_ = State::Failed;
    failure_reason_ = "TLS Socket Factory not ready";
    return;
  }
  ssl_ = context_->newSsl();
  if (ssl_ == nullptr || !callbacks.ioHandle().isOpen() ||
      SSL_set_fd(ssl_, callbacks.ioHandle().fd()) != 1) {
    fail("SSL_new", SSL_ERROR_SSL);
    return;
  }
  if (context_->isServer()) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
    handshake_wants_write_ = true;
    if (!context_->sni().empty()) {
      SSL_set_tlsext_host_name(ssl_, context_->sni().c_str());
    }
    if (!alpn_fallback_.empty() && !context_->hasAlpn()) {
      // RFC 7301's wire form: each protocol of the comma-separated list length-prefixed.
      std::string wire;
      for (absl::string_view protocol : absl::StrSplit(alpn_fallback_, ',')) {
        wire.push_back(static_cast<char>(protocol.size()));
        wire.append(protocol.data(), protocol.size());
      }
      SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(wire.data()),
                          static_cast<unsigned int>(wire.size()));
    }
  }
}

void SslSocket::onConnected() {
  // The client's handshake starts from the write pass that follows (wantsWriteEvents()).
}

Network::PostIoAction SslSocket::doHandshake() {
  if (state_ == State::Failed) {
    return Network::PostIoAction::Close;
  }
  clearErrorQueue();
  const int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    state_ = State::Connected;
    context_->logHandshake(ssl_);
    spdlog::debug("[C{}] TLS handshake done: {} {} alpn '{}'", callbacks_->connection().id(),
                  SSL_get_version(ssl_), SSL_get_cipher_name(ssl_), protocol());
    callbacks_->raiseEvent(Network::ConnectionEvent::Connected);
    // Bytes queued during the handshake go out now; plaintext OpenSSL already holds would get
    // no new Read event (bytes still in the socket would, when it reads level-triggered).
    callbacks_->flushWriteBuffer();
    if (SSL_has_pending(ssl_) != 0 || !callbacks_->shortReadDrainsSocket()) {
      callbacks_->setTransportSocketIsReadable();
    }
    return Network::PostIoAction::KeepOpen;
  }
  const int error = SSL_get_error(ssl_, rc);
  if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
    handshake_wants_write_ = error == SSL_ERROR_WANT_WRITE;
    return Network::PostIoAction::KeepOpen;
  }
  fail("handshake", error);
  return Network::PostIoAction::Close;
}

void SslSocket::fail(const char* where, int ssl_error) {
  if (state_ == State::Failed) {
    return;
  }
  const bool handshaking = state_ == State::Handshaking;
  state_ = State::Failed;
  std::string reason;
  unsigned long code;
  bool no_peer_cert = false;
  while ((code = ERR_get_error()) != 0) {
    if (ERR_GET_REASON(code) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
      no_peer_cert = true;
    }
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    absl::StrAppend(&reason, reason.empty() ? "" : "; ", buf);
  }
  if (reason.empty()) {
    reason = ssl_error == SSL_ERROR_SYSCALL ? absl::StrCat("I/O error (errno ", errno, ")")
                                            : absl::StrCat("SSL error ", ssl_error);
  }
  if (ssl_ != nullptr && SSL_get_verify_result(ssl_) != X509_V_OK) {
    const char* san_failure = ContextImpl::sanFailureReason(ssl_);
    absl::StrAppend(&reason, " (certificate: ",
                    san_failure != nullptr
                        ? san_failure
                        : X509_verify_cert_error_string(SSL_get_verify_result(ssl_)),
                    ")");
  }
  failure_reason_ = absl::StrCat("TLS ", where, " failed: ", reason);
  spdlog::debug("[C{}] {}", callbacks_->connection().id(), failure_reason_);
  // As Envoy: a failed certificate verification is counted by its own stat (fail_verify_*, the
  // others counted by the verify callback), not as a connection error.
  const bool verify_failed =
      no_peer_cert || (ssl_ != nullptr && SSL_get_verify_result(ssl_) != X509_V_OK);
  if (no_peer_cert) {
    context_->stats().fail_verify_no_cert.inc();
  }
  if (handshaking && !verify_failed) {
    context_->stats().connection_error.inc();
  }
}

Network::TransportIoResult SslSocket::doRead(Buffer::Instance& buffer, uint64_t max_buffer_length) {
  Network::TransportIoResult result;
  if (state_ == State::Handshaking) {
    result.action = doHandshake();
    if (state_ != State::Connected) {
      return result;
    }
    // Only what OpenSSL already holds (a request read ahead with the peer's Finished) needs an
    // SSL_read now: bytes still in the socket wake a level-triggered loop again, and a read
    // now would mostly learn EAGAIN.
    if (SSL_has_pending(ssl_) == 0 && callbacks_->shortReadDrainsSocket()) {
      return result;
    }
  }
  if (state_ == State::Failed) {
    result.action = Network::PostIoAction::Close;
    return result;
  }
  char chunk[kRecordSize];
  while (max_buffer_length == 0 || buffer.length() < max_buffer_length) {
    const uint64_t want = max_buffer_length == 0
                              ? kRecordSize
                              : std::min(kRecordSize, max_buffer_length - buffer.length());
    clearErrorQueue();
    const int rc = SSL_read(ssl_, chunk, static_cast<int>(want));
    if (rc > 0) {
      buffer.add(chunk, static_cast<size_t>(rc));
      result.bytes_processed += static_cast<uint64_t>(rc);
      // Read-ahead (ContextImpl) makes OpenSSL ask the socket for all its buffer holds: a
      // record shorter than asked, with nothing left in OpenSSL's buffers, means the socket
      // was drained, as a short read() does on the raw socket (RawBufferSocket::doRead). The
      // next SSL_read would only learn EAGAIN; the connection's level-triggered event reports
      // whatever arrives later (or was left: a full buffer ends a read() early).
      if (static_cast<uint64_t>(rc) < want && SSL_has_pending(ssl_) == 0 &&
          callbacks_->shortReadDrainsSocket()) {
        break;
      }
      continue;
    }
    const int error = SSL_get_error(ssl_, rc);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
      break;
    }
    if (error == SSL_ERROR_ZERO_RETURN) {
      result.end_stream_read = true;  // close_notify, or EOF (SSL_OP_IGNORE_UNEXPECTED_EOF)
      break;
    }
    fail("read", error);
    result.action = Network::PostIoAction::Close;
    break;
  }
  return result;
}

Network::TransportIoResult SslSocket::doWrite(Buffer::Instance& buffer) {
  Network::TransportIoResult result;
  if (state_ == State::Handshaking) {
    result.action = doHandshake();
    if (state_ != State::Connected) {
      return result;
    }
  }
  if (state_ != State::Connected) {
    // Failed, or shut down: what is left cannot go out.
    buffer.drain(buffer.length());
    result.action =
        state_ == State::Failed ? Network::PostIoAction::Close : Network::PostIoAction::KeepOpen;
    return result;
  }
  while (buffer.length() > 0) {
    const uint64_t length =
        bytes_to_retry_ != 0 ? bytes_to_retry_ : std::min<uint64_t>(buffer.length(), kRecordSize);
    clearErrorQueue();
    const int rc = SSL_write(ssl_, buffer.linearize(length), static_cast<int>(length));
    if (rc > 0) {
      bytes_to_retry_ = 0;
      buffer.drain(static_cast<uint64_t>(rc));
      result.bytes_processed += static_cast<uint64_t>(rc);
      continue;
    }
    const int error = SSL_get_error(ssl_, rc);
    if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) {
      bytes_to_retry_ = length;
      break;
    }
    fail("write", error);
    result.action = Network::PostIoAction::Close;
    break;
  }
  return result;
}

void SslSocket::closeSocket(Network::ConnectionEvent) {
  if (state_ == State::Connected) {
    // Best effort close_notify; the fd closes right after, so no waiting for the peer's.
    ERR_clear_error();
    SSL_shutdown(ssl_);
    ERR_clear_error();
    state_ = State::ShutdownSent;
  }
}

std::string_view SslSocket::protocol() const {
  if (ssl_ == nullptr) {
    return {};
  }
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl_, &data, &length);
  return std::string_view(reinterpret_cast<const char*>(data), length);
}

}  // namespace Proxy::Tls
