#pragma once

// A client that pipelines HTTP/1.1 requests the way a flooding peer does: it writes copies of
// one request back to back as fast as the socket takes them and reads nothing back; when told
// to, it reads the responses with one streaming llhttp parser and counts them. Non-blocking
// throughout, so one thread drives many connections (floodUntilStalled, readAllResponses).
// Used by the flow-control integration tests and by the `pipeline-flood` measurement tool.
// Not thread-safe.

#include <llhttp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace Proxy::Integration {

class PipelinedClient {
 public:
  // Connect to 127.0.0.1:`port` (blocking, bounded by `timeout`). `prefix` goes out once before
  // the endless stream of `request` copies (e.g. a request head whose body is that stream).
  static absl::StatusOr<std::unique_ptr<PipelinedClient>> connect(
      uint32_t port, std::string request, std::string prefix = "",
      std::chrono::milliseconds timeout = std::chrono::seconds(5));
  ~PipelinedClient();
  PipelinedClient(const PipelinedClient&) = delete;
  PipelinedClient& operator=(const PipelinedClient&) = delete;

  // Write as much of the stream as the socket takes right now; the bytes written (0: the
  // socket is full). UnavailableError once the peer closed or reset the connection.
  absl::StatusOr<uint64_t> writeSome();
  // Like writeSome(), but only the bytes that complete the copy in progress (never a new one).
  absl::StatusOr<uint64_t> finishPartialRequest();
  // Read whatever has arrived and parse it; the bytes read (0: nothing right now). A response
  // that does not parse is an error; the peer's close is not (see peerClosed()).
  absl::StatusOr<uint64_t> readSome();

  int fd() const { return fd_; }
  uint64_t bytesSent() const { return bytes_sent_; }
  // Complete copies of `request` written.
  uint64_t requestsSent() const;
  // A copy is partly written (the next bytes written belong to it).
  bool midRequest() const;
  uint64_t responsesReceived() const { return responses_; }
  // Status of each response, counted: how many were not 200.
  uint64_t non200Responses() const { return non_200_; }
  bool peerClosed() const { return peer_closed_; }

 private:
  PipelinedClient(int fd, std::string request, std::string prefix);
  absl::StatusOr<uint64_t> writeUpTo(uint64_t max_bytes);

  static int onHeadersComplete(llhttp_t* parser);
  static int onMessageComplete(llhttp_t* parser);

  int fd_;
  const std::string prefix_;
  const uint64_t request_size_;
  // Whole copies of the request, ~64 KiB of them: one send() writes many.
  std::string block_;
  uint64_t block_pos_ = 0;
  uint64_t bytes_sent_ = 0;  // prefix included

  llhttp_t parser_;
  llhttp_settings_t settings_;
  uint64_t responses_ = 0;
  uint64_t non_200_ = 0;
  bool peer_closed_ = false;
};

struct FloodResult {
  uint64_t bytes_sent = 0;
  // No client's socket took a byte for the whole stall window: the peer stopped reading.
  bool stalled = false;
};

// Write to every client until none has taken a byte for `stall` (0: never stop for that),
// `max_bytes` went out in total, or `keep_going` returns false (asked between rounds, every
// few milliseconds). Fails when a connection is closed by the peer.
absl::StatusOr<FloodResult> floodUntilStalled(const std::vector<PipelinedClient*>& clients,
                                              std::chrono::milliseconds stall, uint64_t max_bytes,
                                              const std::function<bool()>& keep_going);

// Complete each client's request in progress and read until every client has one response
// per request it sent. Fails on a deadline, a closed connection or a response that does not
// parse.
absl::Status readAllResponses(const std::vector<PipelinedClient*>& clients,
                              std::chrono::milliseconds timeout);

// A field of /proc/<pid>/status in kB ("VmRSS", "VmHWM"); NotFound when it is not there.
absl::StatusOr<uint64_t> procStatusKb(int pid, const std::string& field);

}  // namespace Proxy::Integration
