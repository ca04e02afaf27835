#include "test/integration/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "llhttp.h"
#include "test/integration/body_pattern.h"

namespace Proxy::Integration {

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) {
      return value;
    }
  }
  return "";
}

bool HttpResponse::hasHeader(std::string_view name) const {
  return std::any_of(headers.begin(), headers.end(),
                     [name](const auto& h) { return h.first == name; });
}

// One response's worth of llhttp state. A fresh parser per response keeps keep-alive simple:
// on_message_complete pauses the parser, so bytes of a following response stay unconsumed.
class HttpClient::Parser {
 public:
  explicit Parser(uint64_t body_keep_limit) : body_keep_limit_(body_keep_limit) {
    llhttp_settings_init(&settings_);
    settings_.on_header_field = [](llhttp_t* p, const char* at, size_t len) {
      return self(p)->onHeaderField(at, len);
    };
    settings_.on_header_value = [](llhttp_t* p, const char* at, size_t len) {
      return self(p)->onHeaderValue(at, len);
    };
    settings_.on_headers_complete = [](llhttp_t* p) {
      self(p)->response_.status = p->status_code;
      return 0;
    };
    settings_.on_body = [](llhttp_t* p, const char* at, size_t len) {
      return self(p)->onBody(at, len);
    };
    settings_.on_message_complete = [](llhttp_t* p) {
      Parser* parser = self(p);
      parser->response_.keep_alive = llhttp_should_keep_alive(p) != 0;
      parser->done_ = true;
      // Stop here: anything after this response belongs to the next readResponse().
      return static_cast<int>(HPE_PAUSED);
    };
    llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
    parser_.data = this;
  }

  // Parse from `data`; returns how many bytes belong to this response.
  absl::StatusOr<size_t> feed(const char* data, size_t len) {
    if (done_ || len == 0) {
      return size_t{0};
    }
    const llhttp_errno_t rc = llhttp_execute(&parser_, data, len);
    if (rc == HPE_OK) {
      return len;
    }
    if (rc == HPE_PAUSED && done_) {
      return static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
    }
    return absl::DataLossError(absl::StrCat("bad response: ", llhttp_errno_name(rc), ": ",
                                            llhttp_get_error_reason(&parser_)));
  }

  // The peer closed: a response delimited by the close is now complete.
  absl::Status finish() {
    if (done_) {
      return absl::OkStatus();
    }
    const llhttp_errno_t rc = llhttp_finish(&parser_);
    if ((rc == HPE_OK || rc == HPE_PAUSED) && done_) {
      response_.keep_alive = false;
      return absl::OkStatus();
    }
    return absl::UnavailableError(
        absl::StrCat("connection closed before the response was complete (status ",
                     response_.status, ", ", response_.body_bytes, " body bytes)"));
  }

  bool done() const { return done_; }
  HttpResponse take() {
    response_.body_fnv1a = fnv_.hex();
    return std::move(response_);
  }

 private:
  static Parser* self(llhttp_t* p) { return static_cast<Parser*>(p->data); }

  int onHeaderField(const char* at, size_t len) {
    if (!in_field_) {
      response_.headers.emplace_back();
      in_field_ = true;
    }
    response_.headers.back().first.append(absl::AsciiStrToLower(absl::string_view(at, len)));
    return 0;
  }
  int onHeaderValue(const char* at, size_t len) {
    in_field_ = false;
    response_.headers.back().second.append(at, len);
    return 0;
  }
  int onBody(const char* at, size_t len) {
    fnv_.update(at, len);
    response_.body_bytes += len;
    if (response_.body.size() < body_keep_limit_) {
      response_.body.append(at, std::min<uint64_t>(len, body_keep_limit_ - response_.body.size()));
    }
    return 0;
  }

  llhttp_t parser_;
  llhttp_settings_t settings_;
  const uint64_t body_keep_limit_;
  HttpResponse response_;
  Fnv1a fnv_;
  bool in_field_ = false;
  bool done_ = false;
};

absl::StatusOr<std::unique_ptr<HttpClient>> HttpClient::connect(uint32_t port,
                                                                std::chrono::milliseconds timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  }
  auto client = std::make_unique<HttpClient>(fd);
  client->setTimeout(timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
      errno != EINPROGRESS) {
    return absl::UnavailableError(
        absl::StrCat("connect 127.0.0.1:", port, ": ", std::strerror(errno)));
  }
  short revents = 0;
  absl::Status waited =
      client->waitFor(POLLOUT, std::chrono::steady_clock::now() + timeout, &revents);
  if (!waited.ok()) {
    return waited;
  }
  int error = 0;
  socklen_t len = sizeof(error);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
  if (error != 0) {
    return absl::UnavailableError(
        absl::StrCat("connect 127.0.0.1:", port, ": ", std::strerror(error)));
  }
  client->setTimeout(10s);
  return client;
}

HttpClient::HttpClient(int fd) : fd_(fd) {
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

HttpClient::~HttpClient() {
  ::close(fd_);
}

absl::Status HttpClient::waitFor(short events, Deadline deadline, short* revents) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return absl::DeadlineExceededError("timed out waiting for the socket");
    }
    pollfd pfd{fd_, events, 0};
    const int rc = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) {
      continue;
    }
    if (rc < 0) {
      return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    }
    if (rc > 0) {
      *revents = pfd.revents;
      return absl::OkStatus();
    }
  }
}

absl::StatusOr<size_t> HttpClient::readSome(Deadline deadline) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n > 0) {
      pending_.append(buf, static_cast<size_t>(n));
      return static_cast<size_t>(n);
    }
    if (n == 0 || (errno == ECONNRESET || errno == EPIPE)) {
      eof_ = true;
      return size_t{0};
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno != EAGAIN) {
      return absl::InternalError(absl::StrCat("recv: ", std::strerror(errno)));
    }
    short revents = 0;
    absl::Status waited = waitFor(POLLIN, deadline, &revents);
    if (!waited.ok()) {
      return waited;
    }
  }
}

absl::Status HttpClient::writeAll(std::string_view bytes, Deadline deadline, Parser* parser) {
  while (!bytes.empty()) {
    short revents = 0;
    absl::Status waited =
        waitFor(parser != nullptr ? POLLOUT | POLLIN : POLLOUT, deadline, &revents);
    if (!waited.ok()) {
      return waited;
    }
    if (parser != nullptr && (revents & (POLLIN | POLLHUP | POLLERR))) {
      // The peer answered (or gave up) before the request was complete: parse what it said.
      absl::StatusOr<size_t> read = readSome(deadline);
      if (!read.ok()) {
        return read.status();
      }
      absl::StatusOr<size_t> used = parser->feed(pending_.data(), pending_.size());
      if (!used.ok()) {
        return used.status();
      }
      pending_.erase(0, *used);
      if (parser->done() || eof_) {
        return absl::OkStatus();
      }
      continue;
    }
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return absl::UnavailableError(absl::StrCat("send: ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

absl::Status HttpClient::sendRaw(std::string_view bytes) {
  return writeAll(bytes, std::chrono::steady_clock::now() + timeout_, nullptr);
}

absl::StatusOr<HttpResponse> HttpClient::readResponse() {
  const Deadline deadline = std::chrono::steady_clock::now() + timeout_;
  Parser parser(body_keep_limit_);
  for (;;) {
    absl::StatusOr<size_t> used = parser.feed(pending_.data(), pending_.size());
    if (!used.ok()) {
      return used.status();
    }
    pending_.erase(0, *used);
    if (parser.done()) {
      return parser.take();
    }
    if (eof_) {
      absl::Status finished = parser.finish();
      if (!finished.ok()) {
        return finished;
      }
      return parser.take();
    }
    absl::StatusOr<size_t> read = readSome(deadline);
    if (!read.ok()) {
      return read.status();
    }
  }
}

std::string HttpClient::serialize(const HttpRequest& request) {
  std::string out =
      absl::StrCat(request.method, " ", request.path, " HTTP/1.1\r\nhost: ", request.host, "\r\n");
  for (const auto& [key, value] : request.headers) {
    absl::StrAppend(&out, key, ": ", value, "\r\n");
  }
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    absl::StrAppend(&out, "content-length: ", request.body.size(), "\r\n");
  }
  absl::StrAppend(&out, "\r\n", request.body);
  return out;
}

absl::StatusOr<HttpResponse> HttpClient::request(const HttpRequest& request) {
  absl::Status sent = sendRaw(serialize(request));
  if (!sent.ok()) {
    return sent;
  }
  return readResponse();
}

absl::StatusOr<HttpResponse> HttpClient::chunkedUpload(const HttpRequest& request,
                                                       uint64_t body_bytes, size_t chunk_size) {
  const Deadline deadline = std::chrono::steady_clock::now() + timeout_;
  Parser parser(body_keep_limit_);
  HttpRequest head = request;
  head.body.clear();
  head.headers.emplace_back("transfer-encoding", "chunked");
  std::string out =
      absl::StrCat(head.method, " ", head.path, " HTTP/1.1\r\nhost: ", head.host, "\r\n");
  for (const auto& [key, value] : head.headers) {
    absl::StrAppend(&out, key, ": ", value, "\r\n");
  }
  out += "\r\n";
  absl::Status sent = writeAll(out, deadline, &parser);

  // One reusable chunk buffer: the body is generated as it is sent, never held whole.
  std::string chunk;
  for (uint64_t offset = 0; sent.ok() && !parser.done() && !eof_ && offset < body_bytes;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_size, body_bytes - offset));
    char size_line[32];
    const int size_len = std::snprintf(size_line, sizeof(size_line), "%zx\r\n", n);
    chunk.assign(size_line, static_cast<size_t>(size_len));
    const size_t data_at = chunk.size();
    chunk.resize(data_at + n);
    fillPattern(offset, chunk.data() + data_at, n);
    chunk += "\r\n";
    sent = writeAll(chunk, deadline, &parser);
    offset += n;
  }
  if (sent.ok() && !parser.done() && !eof_) {
    sent = writeAll("0\r\n\r\n", deadline, &parser);
  }
  if (!sent.ok() && sent.code() != absl::StatusCode::kUnavailable) {
    return sent;
  }
  // A failed send (the peer reset) is fine when the peer answered first: read on with the same
  // parser, which may already hold part of the response.
  for (;;) {
    if (parser.done()) {
      return parser.take();
    }
    if (eof_) {
      absl::Status finished = parser.finish();
      if (!finished.ok()) {
        return finished;
      }
      return parser.take();
    }
    absl::StatusOr<size_t> read = readSome(deadline);
    if (!read.ok()) {
      return read.status();
    }
    absl::StatusOr<size_t> used = parser.feed(pending_.data(), pending_.size());
    if (!used.ok()) {
      return used.status();
    }
    pending_.erase(0, *used);
  }
}

bool HttpClient::waitForClose(std::chrono::milliseconds timeout) {
  const Deadline deadline = std::chrono::steady_clock::now() + timeout;
  while (!eof_) {
    pending_.clear();
    if (!readSome(deadline).ok()) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<HttpResponse> httpRequest(uint32_t port, const HttpRequest& request,
                                         std::chrono::milliseconds timeout) {
  absl::StatusOr<HttpClientPtr> client = HttpClient::connect(port, timeout);
  if (!client.ok()) {
    return client.status();
  }
  (*client)->setTimeout(timeout);
  return (*client)->request(request);
}

}  // namespace Proxy::Integration
