#include "test/integration/pipelined_client.h"

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
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace Proxy::Integration {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kBlockBytes = 64 * 1024;

int pollMillis(Clock::time_point deadline, std::chrono::milliseconds cap) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(0, std::min(left, cap).count()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PipelinedClient>> PipelinedClient::connect(
    uint32_t port, std::string request, std::string prefix, std::chrono::milliseconds timeout) {
  if (request.empty()) {
    return absl::InvalidArgumentError("the request to pipeline is empty");
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  }
  std::unique_ptr<PipelinedClient> client(
      new PipelinedClient(fd, std::move(request), std::move(prefix)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
      errno != EINPROGRESS) {
    return absl::UnavailableError(
        absl::StrCat("connect 127.0.0.1:", port, ": ", std::strerror(errno)));
  }
  pollfd pfd{fd, POLLOUT, 0};
  if (::poll(&pfd, 1, static_cast<int>(timeout.count())) != 1) {
    return absl::DeadlineExceededError(absl::StrCat("connect 127.0.0.1:", port, ": timed out"));
  }
  int error = 0;
  socklen_t len = sizeof(error);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
  if (error != 0) {
    return absl::UnavailableError(
        absl::StrCat("connect 127.0.0.1:", port, ": ", std::strerror(error)));
  }
  return client;
}

PipelinedClient::PipelinedClient(int fd, std::string request, std::string prefix)
    : fd_(fd), prefix_(std::move(prefix)), request_size_(request.size()) {
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  const size_t copies = std::max<size_t>(1, kBlockBytes / request.size());
  block_.reserve(copies * request.size());
  for (size_t i = 0; i < copies; i++) {
    block_ += request;
  }
  llhttp_settings_init(&settings_);
  settings_.on_headers_complete = &PipelinedClient::onHeadersComplete;
  settings_.on_message_complete = &PipelinedClient::onMessageComplete;
  llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
  parser_.data = this;
}

PipelinedClient::~PipelinedClient() {
  ::close(fd_);
}

int PipelinedClient::onHeadersComplete(llhttp_t* parser) {
  auto* self = static_cast<PipelinedClient*>(parser->data);
  if (parser->status_code != 200) {
    self->non_200_++;
  }
  return 0;
}

int PipelinedClient::onMessageComplete(llhttp_t* parser) {
  static_cast<PipelinedClient*>(parser->data)->responses_++;
  return 0;
}

uint64_t PipelinedClient::requestsSent() const {
  return bytes_sent_ < prefix_.size() ? 0 : (bytes_sent_ - prefix_.size()) / request_size_;
}

bool PipelinedClient::midRequest() const {
  return bytes_sent_ < prefix_.size() || (bytes_sent_ - prefix_.size()) % request_size_ != 0;
}

absl::StatusOr<uint64_t> PipelinedClient::writeSome() {
  return writeUpTo(UINT64_MAX);
}

absl::StatusOr<uint64_t> PipelinedClient::finishPartialRequest() {
  if (!midRequest()) {
    return uint64_t{0};
  }
  if (bytes_sent_ < prefix_.size()) {
    return writeUpTo(prefix_.size() - bytes_sent_ + request_size_);
  }
  return writeUpTo(request_size_ - (bytes_sent_ - prefix_.size()) % request_size_);
}

absl::StatusOr<uint64_t> PipelinedClient::writeUpTo(uint64_t max_bytes) {
  uint64_t written = 0;
  while (written < max_bytes) {
    const char* data;
    size_t len;
    if (bytes_sent_ < prefix_.size()) {
      data = prefix_.data() + bytes_sent_;
      len = prefix_.size() - bytes_sent_;
    } else {
      data = block_.data() + block_pos_;
      len = block_.size() - block_pos_;
    }
    len = static_cast<size_t>(std::min<uint64_t>(len, max_bytes - written));
    const ssize_t n = ::send(fd_, data, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    }
    if (n <= 0) {
      peer_closed_ = true;
      return absl::UnavailableError(absl::StrCat("send: ", std::strerror(errno)));
    }
    const bool in_prefix = bytes_sent_ < prefix_.size();
    bytes_sent_ += static_cast<uint64_t>(n);
    written += static_cast<uint64_t>(n);
    if (!in_prefix) {
      block_pos_ = (block_pos_ + static_cast<uint64_t>(n)) % block_.size();
    }
  }
  return written;
}

absl::StatusOr<uint64_t> PipelinedClient::readSome() {
  char buf[64 * 1024];
  uint64_t total = 0;
  while (!peer_closed_) {
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    }
    if (n <= 0) {
      peer_closed_ = true;
      break;
    }
    total += static_cast<uint64_t>(n);
    const llhttp_errno_t rc = llhttp_execute(&parser_, buf, static_cast<size_t>(n));
    if (rc != HPE_OK) {
      return absl::DataLossError(absl::StrCat("bad response after ", responses_,
                                              " responses: ", llhttp_errno_name(rc), ": ",
                                              llhttp_get_error_reason(&parser_)));
    }
  }
  return total;
}

absl::StatusOr<FloodResult> floodUntilStalled(const std::vector<PipelinedClient*>& clients,
                                              std::chrono::milliseconds stall, uint64_t max_bytes,
                                              const std::function<bool()>& keep_going) {
  FloodResult result;
  Clock::time_point last_progress = Clock::now();
  std::vector<pollfd> fds(clients.size());
  while (result.bytes_sent < max_bytes && keep_going()) {
    for (size_t i = 0; i < clients.size(); i++) {
      fds[i] = pollfd{clients[i]->fd(), POLLOUT, 0};
    }
    // A short wait, so that keep_going() (a memory probe, a clock) is asked often.
    const int ready = ::poll(fds.data(), fds.size(), 10);
    if (ready < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    }
    for (size_t i = 0; i < clients.size() && ready > 0; i++) {
      if ((fds[i].revents & (POLLOUT | POLLERR | POLLHUP)) == 0) {
        continue;
      }
      absl::StatusOr<uint64_t> written = clients[i]->writeSome();
      if (!written.ok()) {
        return absl::UnavailableError(absl::StrCat("connection ", i, " after ",
                                                   clients[i]->requestsSent(),
                                                   " requests: ", written.status().message()));
      }
      if (*written > 0) {
        result.bytes_sent += *written;
        last_progress = Clock::now();
      }
    }
    if (stall.count() > 0 && Clock::now() - last_progress >= stall) {
      result.stalled = true;
      break;
    }
  }
  return result;
}

absl::Status readAllResponses(const std::vector<PipelinedClient*>& clients,
                              std::chrono::milliseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  std::vector<pollfd> fds;
  std::vector<PipelinedClient*> pending;
  for (;;) {
    fds.clear();
    pending.clear();
    for (PipelinedClient* client : clients) {
      if (client->midRequest() || client->responsesReceived() < client->requestsSent()) {
        if (client->peerClosed()) {
          return absl::UnavailableError(absl::StrCat("connection closed after ",
                                                     client->responsesReceived(), " of ",
                                                     client->requestsSent(), " responses"));
        }
        pending.push_back(client);
        fds.push_back(pollfd{client->fd(),
                             static_cast<short>(POLLIN | (client->midRequest() ? POLLOUT : 0)), 0});
      }
    }
    if (pending.empty()) {
      return absl::OkStatus();
    }
    if (Clock::now() >= deadline) {
      uint64_t received = 0;
      uint64_t sent = 0;
      for (PipelinedClient* client : clients) {
        received += client->responsesReceived();
        sent += client->requestsSent();
      }
      return absl::DeadlineExceededError(
          absl::StrCat("timed out with ", received, " of ", sent, " responses read"));
    }
    const int ready = ::poll(fds.data(), fds.size(), pollMillis(deadline, std::chrono::seconds(1)));
    if (ready < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    }
    for (size_t i = 0; i < pending.size() && ready > 0; i++) {
      if ((fds[i].revents & POLLOUT) != 0) {
        absl::StatusOr<uint64_t> written = pending[i]->finishPartialRequest();
        if (!written.ok()) {
          return written.status();
        }
      }
      if ((fds[i].revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
        absl::StatusOr<uint64_t> read = pending[i]->readSome();
        if (!read.ok()) {
          return read.status();
        }
      }
    }
  }
}

absl::StatusOr<uint64_t> procStatusKb(int pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  const std::string prefix = field + ":";
  while (std::getline(in, line)) {
    if (line.compare(0, prefix.size(), prefix) != 0) {
      continue;
    }
    std::istringstream words(line.substr(prefix.size()));
    uint64_t kb = 0;
    if (words >> kb) {
      return kb;
    }
  }
  return absl::NotFoundError(absl::StrCat("no ", field, " in /proc/", pid, "/status"));
}

}  // namespace Proxy::Integration
