#include "proxy/network/raw_buffer_socket.h"

#include "spdlog/spdlog.h"

namespace Proxy::Network {

TransportIoResult RawBufferSocket::doRead(Buffer::Instance& buffer, uint64_t max_buffer_length) {
  TransportIoResult result;
  IoHandle& socket = callbacks_->ioHandle();
  while (true) {
    // The limit bounds what the buffer holds, not what one call reads (see ConnectionImpl).
    if (max_buffer_length != 0 && buffer.length() >= max_buffer_length) {
      break;
    }
    const uint64_t max_length = max_buffer_length == 0 ? 0 : max_buffer_length - buffer.length();
    const Buffer::IoResult io = socket.read(buffer, max_length);
    if (io.rc > 0) {
      result.bytes_processed += static_cast<uint64_t>(io.rc);
      // A short read drained the socket: stop here rather than read again for EAGAIN (half of
      // all reads on a keep-alive connection), when the connection says the event loop will
      // report what comes next.
      if (static_cast<uint64_t>(io.rc) < socket.lastReadLength() &&
          callbacks_->shortReadDrainsSocket()) {
        break;
      }
      continue;
    }
    if (io.rc == 0) {
      result.end_stream_read = true;
    } else if (!io.wouldBlock()) {
      spdlog::debug("[C{}] read error: {}", callbacks_->connection().id(), errorDetails(io.error));
      result.action = PostIoAction::Close;
    }
    break;
  }
  return result;
}

TransportIoResult RawBufferSocket::doWrite(Buffer::Instance& buffer) {
  TransportIoResult result;
  IoHandle& socket = callbacks_->ioHandle();
  while (buffer.length() > 0) {
    const Buffer::IoResult io = socket.write(buffer);
    if (io.ok()) {
      result.bytes_processed += static_cast<uint64_t>(io.rc);
      if (io.rc == 0) {
        break;
      }
      continue;
    }
    if (!io.wouldBlock()) {
      spdlog::debug("[C{}] write error: {}", callbacks_->connection().id(), errorDetails(io.error));
      result.action = PostIoAction::Close;
    }
    break;
  }
  return result;
}

}  // namespace Proxy::Network
