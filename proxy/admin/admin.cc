#include "proxy/admin/admin.h"

#include <list>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "proxy/common/assert.h"
#include "proxy/common/string_util.h"
#include "proxy/common/string_view.h"
#include "proxy/http/http1/server_connection_impl.h"
#include "proxy/network/connection_impl.h"
#include "proxy/network/listen_socket.h"
#include "proxy/network/tcp_listener_impl.h"

namespace Proxy::Admin {

namespace {

std::string percentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); i++) {
    if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else if (in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

class AdminImpl;

// One admin connection: the body is collected (up to the limit) before answering. Answers
// "Expect: 100-continue" itself, as Envoy's connection manager does.
class AdminConnection : public Network::ReadFilter,
                        public Network::ConnectionCallbacks,
                        public Http::ServerConnectionCallbacks,
                        public Http::CodecOutput,
                        public Http::RequestDecoder,
                        public Event::DeferredDeletable {
 public:
  AdminConnection(AdminImpl& parent, Network::ConnectionPtr connection);
  ~AdminConnection() override { connection_->removeConnectionCallbacks(*this); }

  void onData(Buffer::Instance& data, bool) override;
  void onEvent(Network::ConnectionEvent event) override;
  Http::RequestDecoder& newStream(Http::ResponseEncoder& encoder) override {
    encoder_ = &encoder;
    body_.clear();
    return *this;
  }
  void write(Buffer::Instance& data, bool end_stream) override {
    connection_->write(data, end_stream);
  }
  void readDisable(bool disable) override { connection_->readDisable(disable); }
  void decodeHeaders(Http::RequestHeaderMapPtr&& headers, bool end_stream) override;
  void decodeData(Buffer::Instance& data, bool end_stream) override;
  // Admin's codec does not enable trailers, so this never runs; the request ends either way.
  void decodeTrailers(Http::RequestTrailerMapPtr&&) override {
    Buffer::Instance empty;
    decodeData(empty, /*end_stream=*/true);
  }

  std::list<std::unique_ptr<AdminConnection>>::iterator it;

 private:
  void respond();
  void encode(const Response& response);
  // 413 before the body was read; onData() then reads the rest away (see lingerForClose()).
  void refuseBody();
  void lingerForClose();

  AdminImpl& parent_;

 public:
  // The global connection limit's slot (empty when admin ignores the limit), given back after
  // the connection is gone (declared first, destroyed last).
  Network::ConnectionSlot slot;

 private:
  Network::ConnectionPtr connection_;
  std::unique_ptr<Http::ServerConnectionImpl> codec_;
  Http::ResponseEncoder* encoder_ = nullptr;
  Http::RequestHeaderMapPtr headers_;
  std::string body_;
  bool body_refused_ = false;
  bool lingering_ = false;
  Event::TimerPtr linger_timer_;
};

class AdminImpl : public Admin, public Network::TcpListenerCallbacks {
 public:
  AdminImpl(Event::Dispatcher& dispatcher, Network::ListenSocketPtr socket, AdminOptions options)
      : dispatcher_(dispatcher), socket_(std::move(socket)), options_(std::move(options)) {
    listener_ = std::make_unique<Network::TcpListenerImpl>(dispatcher_, *socket_, *this);
    if (options_.global_connection_limit != nullptr) {
      Stats::Counter* overflow = options_.global_overflow;
      listener_->setGlobalConnectionLimit(options_.global_connection_limit, [overflow] {
        if (overflow != nullptr) {
          overflow->inc();
        }
      });
    }
    addHandler("/", "print this help", false, [this](const Request&, Response& response) {
      response.body = "admin commands are:\n";
      for (const auto& [path, entry] : handlers_) {
        absl::StrAppend(&response.body, "  ", path, ": ", entry.help, "\n");
      }
    });
    addHandler("/help", "print this help", false, [this](const Request& r, Response& response) {
      handlers_.at("/").handler(r, response);
    });
  }

  ~AdminImpl() override {
    listener_.reset();
    while (!connections_.empty()) {
      remove(*connections_.front());
    }
    dispatcher_.clearDeferredDeleteList();
  }

  void addHandler(std::string path, std::string help, bool mutates_state,
                  Handler handler) override {
    handlers_[std::move(path)] = Entry{std::move(help), mutates_state, std::move(handler)};
  }
  const Network::Address& address() const override { return socket_->localAddress(); }
  const AdminOptions& options() const { return options_; }

  void onAccept(Network::IoHandle socket, const Network::Address& remote,
                const Network::Address& local) override {
    auto connection =
        std::make_unique<Network::ConnectionImpl>(dispatcher_, std::move(socket), remote, local);
    auto admin_connection = std::make_unique<AdminConnection>(*this, std::move(connection));
    // The TcpListenerImpl took a slot for this socket when admin counts against the limit.
    admin_connection->slot = Network::ConnectionSlot(options_.global_connection_limit);
    connections_.push_front(std::move(admin_connection));
    connections_.front()->it = connections_.begin();
  }

  void remove(AdminConnection& connection) {
    std::unique_ptr<AdminConnection> owned = std::move(*connection.it);
    connections_.erase(connection.it);
    dispatcher_.deferredDelete(std::move(owned));
  }

  void handle(const Http::RequestHeaderMap& headers, std::string_view body, Response& response) {
    const std::string_view full_path = headers.path();
    const size_t q = full_path.find('?');
    Request request;
    request.method = headers.method();
    request.path = full_path.substr(0, q);
    request.body = body;
    if (q != std::string_view::npos) {
      for (absl::string_view pair : absl::StrSplit(asAbsl(full_path.substr(q + 1)), '&')) {
        if (pair.empty()) {
          continue;
        }
        const size_t eq = pair.find('=');
        const std::string_view item(pair.data(), pair.size());
        request.query[percentDecode(item.substr(0, eq))] =
            eq == std::string_view::npos ? "" : percentDecode(item.substr(eq + 1));
      }
    }
    auto it = handlers_.find(std::string(request.path));
    if (it == handlers_.end()) {
      response.code = 404;
      response.body = absl::StrCat("invalid path: ", std::string(request.path), "\n");
      return;
    }
    if (it->second.mutates_state && request.method != "POST") {
      response.code = 405;
      response.body = "This endpoint requires POST\n";
      return;
    }
    it->second.handler(request, response);
  }

 private:
  struct Entry {
    std::string help;
    bool mutates_state;
    Handler handler;
  };

  Event::Dispatcher& dispatcher_;
  Network::ListenSocketPtr socket_;
  const AdminOptions options_;
  std::unique_ptr<Network::TcpListenerImpl> listener_;
  std::map<std::string, Entry> handlers_;
  std::list<std::unique_ptr<AdminConnection>> connections_;
};

AdminConnection::AdminConnection(AdminImpl& parent, Network::ConnectionPtr connection)
    : parent_(parent),
      connection_(std::move(connection)),
      codec_(std::make_unique<Http::ServerConnectionImpl>(*this, *this, Http::Http1Settings{})) {
  connection_->addConnectionCallbacks(*this);
  connection_->setReadFilter(this);
}

void AdminConnection::decodeHeaders(Http::RequestHeaderMapPtr&& headers, bool end_stream) {
  headers_ = std::move(headers);
  if (end_stream) {
    respond();
    return;
  }
  // A body follows. One announced over the limit is refused before it is sent (with
  // "Expect: 100-continue") or read; a smaller one gets its room at once.
  const uint64_t limit = parent_.options().max_request_body_bytes;
  uint64_t announced = 0;
  const std::string_view length = headers_->getValue(Http::Headers::ContentLength);
  if (absl::SimpleAtoi(asAbsl(length), &announced)) {
    if (announced > limit) {
      refuseBody();
      return;
    }
    body_.reserve(announced);
  }
  const std::string_view expect = headers_->getValue(Http::Headers::Expect);
  if (StringUtil::equalsIgnoreCase(expect, "100-continue")) {
    encoder_->encode100ContinueHeaders();
  }
}

void AdminConnection::decodeData(Buffer::Instance& data, bool end_stream) {
  if (body_refused_) {
    data.drain(data.length());
    return;
  }
  if (body_.size() + data.length() > parent_.options().max_request_body_bytes) {
    // Refused whole: a handler never sees part of a body.
    data.drain(data.length());
    refuseBody();
    return;
  }
  body_ += data.toString();
  data.drain(data.length());
  if (end_stream) {
    respond();
  }
}

void AdminConnection::refuseBody() {
  body_refused_ = true;
  body_.clear();
  body_.shrink_to_fit();
  const AdminOptions& options = parent_.options();
  Response response;
  response.code = 413;
  response.body =
      absl::StrCat("request body exceeds the limit of ", options.max_request_body_bytes, " bytes");
  if (!options.max_request_body_flag.empty()) {
    absl::StrAppend(&response.body, " (", options.max_request_body_flag, ")");
  }
  response.body += "\n";
  // Answered before the request ended: the codec marks the connection to close after it.
  encode(response);
}

void AdminConnection::lingerForClose() {
  // Closing now, with the client's body still arriving, would answer it with a reset that
  // can destroy the 413 before the client reads it. Instead: send the answer and a FIN, read
  // and drop whatever the client still sends until it closes its side (a client using
  // "Expect: 100-continue" sends nothing more), for at most kLingerTime.
  static constexpr std::chrono::seconds kLingerTime{10};
  lingering_ = true;
  connection_->enableHalfClose(true);
  Buffer::Instance none;
  connection_->write(none, /*end_stream=*/true);
  linger_timer_ = connection_->dispatcher().createTimer(
      [this] { connection_->close(Network::ConnectionCloseType::NoFlush); });
  linger_timer_->enableTimer(kLingerTime);
}

void AdminConnection::onData(Buffer::Instance& data, bool end_stream) {
  if (lingering_) {
    data.drain(data.length());
    if (end_stream) {
      connection_->close(Network::ConnectionCloseType::FlushWrite);
    }
    return;
  }
  if (!codec_->dispatch(data).ok()) {
    const Http::CodecError& error = codec_->lastError();
    Buffer::Instance out;
    out.add(absl::StrCat("HTTP/1.1 ", error.http_code,
                         " Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"));
    connection_->write(out, false);
    connection_->close(Network::ConnectionCloseType::FlushWrite);
    return;
  }
  if (body_refused_) {
    // The codec has flushed the 413 by now (it holds output until dispatch() returns).
    data.drain(data.length());
    lingerForClose();
    if (end_stream) {
      connection_->close(Network::ConnectionCloseType::FlushWrite);
    }
    return;
  }
  if (end_stream && encoder_ == nullptr) {
    connection_->close(Network::ConnectionCloseType::FlushWrite);
  }
}

void AdminConnection::onEvent(Network::ConnectionEvent event) {
  if (event != Network::ConnectionEvent::Connected) {
    parent_.remove(*this);
  }
}

void AdminConnection::respond() {
  Response response;
  parent_.handle(*headers_, body_, response);
  // A body is never kept beyond its request (it may be tens of MB).
  body_.clear();
  body_.shrink_to_fit();
  encode(response);
  if (codec_->closeAfterResponse()) {
    connection_->close(Network::ConnectionCloseType::FlushWrite);
  }
}

void AdminConnection::encode(const Response& response) {
  Http::ResponseHeaderMap headers;
  headers.setStatus(response.code);
  headers.addCopy(Http::Headers::ContentType, response.content_type);
  headers.addCopy(Http::Headers::ContentLength, std::to_string(response.body.size()));
  headers.addCopy("cache-control", "no-cache, max-age=0");
  headers.addCopy("x-content-type-options", "nosniff");
  Http::ResponseEncoder* encoder = encoder_;
  encoder_ = nullptr;
  if (response.body.empty()) {
    encoder->encodeHeaders(headers, true);
  } else {
    encoder->encodeHeaders(headers, false);
    Buffer::Instance body;
    body.add(response.body);
    encoder->encodeData(body, true);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Admin>> createAdmin(Event::Dispatcher& dispatcher,
                                                   const Network::Address& address,
                                                   AdminOptions options) {
  auto socket = Network::ListenSocket::create(address, /*reuse_port=*/false, /*backlog=*/128);
  if (!socket.ok()) {
    return socket.status();
  }
  return std::make_unique<AdminImpl>(dispatcher, *std::move(socket), std::move(options));
}

}  // namespace Proxy::Admin
