// The HTTP/2 server codec (server_connection_impl.h). Over ~600 lines on purpose: StreamImpl, the
// nghttp2 callback table and the connection share their private state; splitting them would only
// move that state into a header.

#include "proxy/http/http2/server_connection_impl.h"

#include <algorithm>
#include <string>

#include "absl/container/inlined_vector.h"
#include "proxy/common/assert.h"
#include "proxy/common/free_list.h"
#include "proxy/http/http1/codec_impl_base.h"

namespace Proxy::Http::Http2 {

namespace {

// Connection-scoped headers HTTP/2 forbids (RFC 9113 8.2.2); an HTTP/1 upstream's are dropped.
bool isConnectionHeader(std::string_view name) {
  return name == Headers::Connection || name == Headers::KeepAlive ||
         name == Headers::ProxyConnection || name == Headers::TransferEncoding ||
         name == Headers::Upgrade;
}

nghttp2_nv makeNv(std::string_view name, std::string_view value,
                  uint8_t flags = NGHTTP2_NV_FLAG_NONE) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), flags};
}

// A header block for nghttp2: inline up to 32 fields (no allocation per response).
using NvArray = absl::InlinedVector<nghttp2_nv, 32>;

// Pseudo-headers first, as HTTP/2 requires; connection-specific headers dropped. The views point
// into `headers`. With `no_copy`, nghttp2 keeps the views instead of copying the bytes: only
// when the frame is serialized before `headers` can change (sendPendingFrames() right after the
// submit, outside dispatch()).
NvArray buildHeaders(const HeaderMap& headers, bool no_copy) {
  const uint8_t flags = no_copy ? (NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE)
                                : NGHTTP2_NV_FLAG_NONE;
  NvArray out;
  out.reserve(headers.size());
  for (const HeaderEntry& entry : headers) {
    if (!entry.key.empty() && entry.key[0] == ':') {
      out.push_back(makeNv(entry.key, entry.value, flags));
    }
  }
  for (const HeaderEntry& entry : headers) {
    if (entry.key.empty() || entry.key[0] == ':' || isConnectionHeader(entry.key)) {
      continue;
    }
    out.push_back(makeNv(entry.key, entry.value, flags));
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// One stream: the connection manager's encoder and stream handle. Made per request: from the
// thread's free list (issue 11).

class ServerConnectionImpl::StreamImpl
    : public Common::ThreadLocalFreeList<ServerConnectionImpl::StreamImpl>,
      public ResponseEncoder,
      public Stream {
 public:
  StreamImpl(ServerConnectionImpl& parent, int32_t id) : parent_(parent), id_(id) {}

  // ResponseEncoder
  void encode100ContinueHeaders() override {
    if (closed_ || response_started_) {
      return;
    }
    const nghttp2_nv nv[] = {makeNv(Headers::Status, "100")};
    nghttp2_submit_headers(parent_.session_, NGHTTP2_FLAG_NONE, id_, nullptr, nv, 1, nullptr);
    parent_.sendPendingFrames();
  }
  void encodeHeaders(const ResponseHeaderMap& headers, bool end_stream) override {
    if (closed_ || response_started_) {
      return;
    }
    response_started_ = true;
    local_end_ = end_stream;
    // Outside dispatch() the HEADERS frame is serialized by the sendPendingFrames() below, while
    // `headers` is alive: nghttp2 need not copy it.
    const NvArray nv = buildHeaders(headers, /*no_copy=*/parent_.canSendNow());
    nghttp2_data_provider provider;
    provider.source.ptr = this;
    provider.read_callback = &StreamImpl::readCallback;
    nghttp2_submit_response(parent_.session_, id_, nv.data(), nv.size(),
                            end_stream ? nullptr : &provider);
    parent_.sendPendingFrames();
  }
  void encodeData(Buffer::Instance& data, bool end_stream) override {
    if (closed_ || !response_started_ || local_end_) {
      data.drain(data.length());
      return;
    }
    pending_send_.move(data);
    local_end_ = end_stream;
    resumeData();
    updateSendWatermark();
  }
  void encodeTrailers(const ResponseTrailerMap& trailers) override {
    if (closed_ || !response_started_ || local_end_) {
      return;
    }
    local_end_ = true;
    if (!trailers.empty()) {
      // Sent from readCallback() once the body before them is out (nghttp2's pattern).
      pending_trailers_ = std::make_unique<ResponseTrailerMap>(trailers);
    }
    resumeData();
  }
  Stream& getStream() override { return *this; }

  // Stream
  void addCallbacks(StreamCallbacks& callbacks) override {
    callbacks_.add(callbacks, aboveHighWatermark());
  }
  void removeCallbacks(StreamCallbacks& callbacks) override { callbacks_.remove(callbacks); }
  void resetStream(StreamResetReason reason) override {
    if (closed_ || reset_callbacks_run_) {
      return;
    }
    // Higher layers expect the callbacks at once; the RST_STREAM follows (NO_ERROR, as Envoy:
    // the peer may stop sending, nothing went wrong on the wire). A response that is complete
    // but still waiting for the peer's window goes out first (Envoy's deferred reset): a reset
    // now would discard it.
    runResetCallbacks(reason);
    if (local_end_ && !local_end_sent_) {
      deferred_reset_ = true;
      return;
    }
    nghttp2_submit_rst_stream(parent_.session_, NGHTTP2_FLAG_NONE, id_, NGHTTP2_NO_ERROR);
    parent_.sendPendingFrames();
  }
  void readDisable(bool disable) override {
    if (disable) {
      read_disable_count_++;
      return;
    }
    if (read_disable_count_ > 0) {
      read_disable_count_--;
    }
    if (read_disable_count_ == 0 && unconsumed_bytes_ > 0 && !closed_) {
      // The body was consumed: the peer may send more (WINDOW_UPDATE).
      nghttp2_session_consume(parent_.session_, id_, unconsumed_bytes_);
      unconsumed_bytes_ = 0;
      parent_.sendPendingFrames();
    }
  }

  // nghttp2_data_source_read_callback: how many response bytes the next DATA frame carries; the
  // bytes themselves are moved by onSendData() (NO_COPY).
  static ssize_t readCallback(nghttp2_session*, int32_t, uint8_t*, size_t length,
                              uint32_t* data_flags, nghttp2_data_source* source, void*) {
    StreamImpl& stream = *static_cast<StreamImpl*>(source->ptr);
    const uint64_t pending = stream.pending_send_.length();
    if (pending == 0 && !stream.local_end_) {
      stream.data_deferred_ = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    const size_t n = static_cast<size_t>(std::min<uint64_t>(length, pending));
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (stream.local_end_ && n == pending) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      if (stream.pending_trailers_ != nullptr) {
        *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        const NvArray nv = buildHeaders(*stream.pending_trailers_, /*no_copy=*/false);
        nghttp2_submit_trailer(stream.parent_.session_, stream.id_, nv.data(), nv.size());
        stream.pending_trailers_.reset();
      }
    }
    return static_cast<ssize_t>(n);
  }

  void resumeData() {
    if (data_deferred_) {
      data_deferred_ = false;
      nghttp2_session_resume_data(parent_.session_, id_);
    }
    parent_.sendPendingFrames();
  }

  bool aboveHighWatermark() const { return send_above_high_ || parent_.above_high_watermark_; }
  // Runs the watermark callbacks when the combined state (this stream's pending bytes, or the
  // connection's write buffer) changes.
  void updateSendWatermark() {
    const bool was_above = aboveHighWatermark();
    const uint64_t limit = parent_.settings_.stream_buffer_limit;
    if (limit > 0) {
      if (!send_above_high_ && pending_send_.length() > limit) {
        send_above_high_ = true;
      } else if (send_above_high_ && pending_send_.length() <= limit / 2) {
        send_above_high_ = false;
      }
    }
    notifyWatermark(was_above);
  }
  void notifyWatermark(bool was_above) {
    const bool above = aboveHighWatermark();
    if (above == was_above || closed_ || reset_callbacks_run_) {
      return;
    }
    if (above) {
      callbacks_.runAboveHighWatermark();
    } else {
      callbacks_.runBelowLowWatermark();
    }
  }
  void runResetCallbacks(StreamResetReason reason) {
    if (reset_callbacks_run_) {
      return;
    }
    reset_callbacks_run_ = true;
    decoder_ = nullptr;
    callbacks_.runReset(reason);
  }

  ServerConnectionImpl& parent_;
  const int32_t id_;
  RequestHeaderMapPtr headers_ = std::make_unique<RequestHeaderMap>();
  RequestTrailerMapPtr trailers_;  // while a trailer block is being received
  RequestDecoder* decoder_ = nullptr;
  StreamCallbackList callbacks_;
  Buffer::Instance pending_recv_;  // DATA of the frame being received
  Buffer::Instance pending_send_;  // response body waiting for the peer's window
  ResponseTrailerMapPtr pending_trailers_;
  uint64_t header_bytes_ = 0;
  uint64_t unconsumed_bytes_ = 0;  // received while read-disabled: the window stays closed
  uint32_t read_disable_count_ = 0;
  bool remote_end_ = false;
  bool local_end_ = false;  // the encoder ended the response (bytes may still be pending)
  bool local_end_sent_ = false;
  bool response_started_ = false;
  bool data_deferred_ = false;
  bool send_above_high_ = false;
  bool closed_ = false;
  bool reset_callbacks_run_ = false;
  bool remote_reset_ = false;
  bool messaging_error_ = false;
  bool deferred_reset_ = false;  // RST_STREAM once the response's END_STREAM went out
};

// ---------------------------------------------------------------------------------------------
// nghttp2's C callbacks, forwarding to the connection in user_data.

struct ServerNghttp2Callbacks {
  static ServerConnectionImpl& self(void* user_data) {
    return *static_cast<ServerConnectionImpl*>(user_data);
  }
  static ssize_t send(nghttp2_session*, const uint8_t* data, size_t length, int, void* u) {
    return self(u).onSend(data, length);
  }
  static int sendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd, size_t length,
                      nghttp2_data_source* source, void* u) {
    return self(u).onSendData(*frame, framehd, length, *source);
  }
  static int beginFrame(nghttp2_session*, const nghttp2_frame_hd* hd, void* u) {
    return self(u).onBeginFrame(*hd);
  }
  static int beginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* u) {
    return self(u).onBeginHeaders(*frame);
  }
  static int header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                    size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* u) {
    return self(u).onHeader(*frame, std::string_view(reinterpret_cast<const char*>(name), namelen),
                            std::string_view(reinterpret_cast<const char*>(value), valuelen));
  }
  static int frameRecv(nghttp2_session*, const nghttp2_frame* frame, void* u) {
    return self(u).onFrameRecv(*frame);
  }
  static int dataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                       size_t len, void* u) {
    return self(u).onDataChunk(stream_id, data, len);
  }
  static int streamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* u) {
    return self(u).onStreamClose(stream_id, error_code);
  }
  static int frameSend(nghttp2_session*, const nghttp2_frame* frame, void* u) {
    return self(u).onFrameSend(*frame);
  }
  static int invalidFrame(nghttp2_session*, const nghttp2_frame* frame, int lib_error, void* u) {
    return self(u).onInvalidFrame(*frame, lib_error);
  }

  // Built once: the same table serves every session.
  static nghttp2_session_callbacks* get() {
    static nghttp2_session_callbacks* callbacks = [] {
      nghttp2_session_callbacks* cb;
      nghttp2_session_callbacks_new(&cb);
      nghttp2_session_callbacks_set_send_callback(cb, send);
      nghttp2_session_callbacks_set_send_data_callback(cb, sendData);
      nghttp2_session_callbacks_set_on_begin_frame_callback(cb, beginFrame);
      nghttp2_session_callbacks_set_on_begin_headers_callback(cb, beginHeaders);
      nghttp2_session_callbacks_set_on_header_callback(cb, header);
      nghttp2_session_callbacks_set_on_frame_recv_callback(cb, frameRecv);
      nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, dataChunk);
      nghttp2_session_callbacks_set_on_stream_close_callback(cb, streamClose);
      nghttp2_session_callbacks_set_on_frame_send_callback(cb, frameSend);
      nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, invalidFrame);
      return cb;
    }();
    return callbacks;
  }
};

// ---------------------------------------------------------------------------------------------
// ServerConnectionImpl

ServerConnectionImpl::ServerConnectionImpl(CodecOutput& output,
                                           ServerConnectionCallbacks& callbacks,
                                           ServerCodecStats& stats, const ServerSettings& settings)
    : output_(output), callbacks_(callbacks), stats_(stats), settings_(settings) {
  nghttp2_option* option;
  nghttp2_option_new(&option);
  // The window reopens only as the connection manager consumes the body (readDisable()).
  nghttp2_option_set_no_auto_window_update(option, 1);
  // nghttp2 keeps at most this many SETTINGS/PING ACKs queued; past it, NGHTTP2_ERR_FLOODED.
  nghttp2_option_set_max_outbound_ack(option, settings_.max_outbound_control_frames);
  // nghttp2's own CVE mitigations, at their defaults (stated so a reader sees them): RST_STREAM
  // token bucket (CVE-2023-44487) and CONTINUATION frames per header block (CVE-2024-28182).
  nghttp2_option_set_stream_reset_rate_limit(option, /*burst=*/1000, /*rate=*/33);
  nghttp2_option_set_max_continuations(option, 8);
  nghttp2_session_server_new2(&session_, ServerNghttp2Callbacks::get(), this, option);
  nghttp2_option_del(option);

  std::vector<nghttp2_settings_entry> entries;
  entries.push_back({NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings_.max_concurrent_streams});
  if (settings_.initial_stream_window_size != NGHTTP2_INITIAL_WINDOW_SIZE) {
    entries.push_back({NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings_.initial_stream_window_size});
  }
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, entries.data(), entries.size());
  if (settings_.initial_connection_window_size != NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    nghttp2_session_set_local_window_size(
        session_, NGHTTP2_FLAG_NONE, 0,
        static_cast<int32_t>(settings_.initial_connection_window_size));
  }
}

ServerConnectionImpl::~ServerConnectionImpl() {
  nghttp2_session_del(session_);
  stats_.streams_active.sub(static_cast<int64_t>(streams_.size()));
}

absl::Status ServerConnectionImpl::dispatch(Buffer::Instance& data) {
  ASSERT(!dispatching_);
  freeClosedStreams();
  if (error_set_) {
    data.drain(data.length());
    return absl::InvalidArgumentError(error_message_);
  }
  dispatching_ = true;
  while (data.length() > 0 && !error_set_) {
    Buffer::RawSlice slice;
    data.getRawSlices(&slice, 1);
    const ssize_t rv = nghttp2_session_mem_recv(session_, static_cast<const uint8_t*>(slice.mem),
                                                static_cast<size_t>(slice.len));
    if (rv < 0) {
      if (!error_set_) {
        if (rv == NGHTTP2_ERR_FLOODED) {
          stats_.outbound_control_flood.inc();
          fail("http2.outbound_control_frames_flood", "too many control frames queued");
        } else {
          fail("http2.codec_error", nghttp2_strerror(static_cast<int>(rv)));
        }
      }
      break;
    }
    data.drain(slice.len);
  }
  data.drain(data.length());
  dispatching_ = false;
  if (error_set_) {
    return absl::InvalidArgumentError(error_message_);
  }
  // What the input produced: SETTINGS/PING ACKs, WINDOW_UPDATEs, RST_STREAMs, a GOAWAY.
  sendPendingFrames();
  if (error_set_) {
    return absl::InvalidArgumentError(error_message_);
  }
  return absl::OkStatus();
}

void ServerConnectionImpl::onUnderlyingConnectionAboveWriteBufferHighWatermark() {
  std::vector<std::pair<StreamImpl*, bool>> states;
  for (auto& [id, stream] : streams_) {
    states.emplace_back(stream.get(), stream->aboveHighWatermark());
  }
  above_high_watermark_ = true;
  for (auto& [stream, was_above] : states) {
    stream->notifyWatermark(was_above);
  }
}

void ServerConnectionImpl::onUnderlyingConnectionBelowWriteBufferLowWatermark() {
  std::vector<std::pair<StreamImpl*, bool>> states;
  for (auto& [id, stream] : streams_) {
    states.emplace_back(stream.get(), stream->aboveHighWatermark());
  }
  above_high_watermark_ = false;
  for (auto& [stream, was_above] : states) {
    stream->notifyWatermark(was_above);
  }
}

void ServerConnectionImpl::goAway() {
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  sendPendingFrames();
}

void ServerConnectionImpl::shutdownNotice() {
  nghttp2_submit_shutdown_notice(session_);
  sendPendingFrames();
}

bool ServerConnectionImpl::wantsClose() const {
  return error_set_ ||
         (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0);
}

ServerConnectionImpl::StreamImpl* ServerConnectionImpl::getStream(int32_t stream_id) {
  return static_cast<StreamImpl*>(nghttp2_session_get_stream_user_data(session_, stream_id));
}

int ServerConnectionImpl::fail(std::string_view details, std::string_view message) {
  if (!error_set_) {
    error_set_ = true;
    error_.http_code = 0;  // HTTP/2: nothing to answer; the connection closes
    error_.details = std::string(details);
    error_message_ = "http/2 protocol error: ";
    error_message_.append(message);
  }
  return NGHTTP2_ERR_CALLBACK_FAILURE;
}

bool ServerConnectionImpl::sendPendingFrames() {
  if (dispatching_ || error_set_) {
    return !error_set_;  // dispatch() sends at its end
  }
  const int rv = nghttp2_session_send(session_);
  if (rv != 0 && !error_set_) {
    fail("http2.codec_error", nghttp2_strerror(rv));
  }
  if (pending_output_.length() > 0) {
    output_.write(pending_output_, /*end_stream=*/false);
    if (pending_output_.length() > 0) {
      pending_output_.drain(pending_output_.length());
    }
  }
  if (error_set_) {
    callbacks_.onCodecError();
    return false;
  }
  return true;
}

void ServerConnectionImpl::freeClosedStreams() {
  closed_streams_.clear();
}

// --- Outbound ---------------------------------------------------------------------------------

ssize_t ServerConnectionImpl::onSend(const uint8_t* data, size_t length) {
  pending_output_.add(data, length);
  bytes_written_ += length;
  return static_cast<ssize_t>(length);
}

int ServerConnectionImpl::onSendData(nghttp2_frame& frame, const uint8_t* framehd, size_t length,
                                     nghttp2_data_source& source) {
  StreamImpl& stream = *static_cast<StreamImpl*>(source.ptr);
  const bool was_above = stream.aboveHighWatermark();
  pending_output_.add(framehd, 9);
  size_t padding = 0;
  if (frame.data.padlen > 0) {
    const uint8_t pad_length = static_cast<uint8_t>(frame.data.padlen - 1);
    pending_output_.add(&pad_length, 1);
    padding = frame.data.padlen - 1;
  }
  pending_output_.move(stream.pending_send_, length);
  if (padding > 0) {
    const std::string zeros(padding, '\0');
    pending_output_.add(zeros);
  }
  bytes_written_ += 9 + length + frame.data.padlen;
  outbound_data_frames_++;
  trackOutboundFrame(/*control=*/false);
  stream.updateSendWatermark();
  (void)was_above;
  return error_set_ ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

int ServerConnectionImpl::onFrameSend(const nghttp2_frame& frame) {
  const uint8_t type = frame.hd.type;
  if (type != NGHTTP2_DATA) {
    // DATA frames were counted in onSendData().
    const bool control = ((type == NGHTTP2_PING || type == NGHTTP2_SETTINGS) &&
                          (frame.hd.flags & NGHTTP2_FLAG_ACK) != 0) ||
                         type == NGHTTP2_RST_STREAM;
    trackOutboundFrame(control);
  }
  switch (type) {
    case NGHTTP2_RST_STREAM:
      stats_.tx_reset.inc();
      break;
    case NGHTTP2_GOAWAY:
      stats_.goaway_sent.inc();
      break;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
      if ((frame.hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
        if (StreamImpl* stream = getStream(frame.hd.stream_id); stream != nullptr) {
          stream->local_end_sent_ = true;
          if (stream->deferred_reset_ && !stream->remote_end_) {
            nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream->id_, NGHTTP2_NO_ERROR);
          }
        }
      }
      break;
    default:
      break;
  }
  return error_set_ ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

void ServerConnectionImpl::trackOutboundFrame(bool control) {
  outbound_frames_.push_back(bytes_written_);
  if (control) {
    outbound_control_frames_.push_back(bytes_written_);
  }
  checkOutboundFrames();
}

bool ServerConnectionImpl::checkOutboundFrames() {
  // A frame is no longer queued once the socket sent its last byte.
  const std::optional<uint64_t> flushed = output_.bytesFlushed();
  const uint64_t sent = flushed.has_value() ? *flushed : bytes_written_;
  while (!outbound_frames_.empty() && outbound_frames_.front() <= sent) {
    outbound_frames_.pop_front();
  }
  while (!outbound_control_frames_.empty() && outbound_control_frames_.front() <= sent) {
    outbound_control_frames_.pop_front();
  }
  if (outbound_frames_.size() > settings_.max_outbound_frames) {
    stats_.outbound_flood.inc();
    fail("http2.outbound_frames_flood", "too many frames in the outbound queue");
    return false;
  }
  if (outbound_control_frames_.size() > settings_.max_outbound_control_frames) {
    stats_.outbound_control_flood.inc();
    fail("http2.outbound_control_frames_flood", "too many control frames in the outbound queue");
    return false;
  }
  return true;
}

// --- Inbound ----------------------------------------------------------------------------------

int ServerConnectionImpl::onBeginFrame(const nghttp2_frame_hd& hd) {
  // Envoy's ProtocolConstraints::trackInboundFrames / checkInboundFrameLimits.
  switch (hd.type) {
    case NGHTTP2_HEADERS:
    case NGHTTP2_CONTINUATION:
    case NGHTTP2_DATA: {
      // A PADDED frame's length counts its pad length byte: more than that means payload or
      // padding, which nghttp2 validates; only a bare empty frame counts as empty.
      const bool empty = hd.length == 0 && (hd.flags & NGHTTP2_FLAG_END_STREAM) == 0;
      if (empty) {
        if (++consecutive_empty_frames_ >
            settings_.max_consecutive_inbound_frames_with_empty_payload) {
          stats_.inbound_empty_frames_flood.inc();
          return fail("http2.inbound_empty_frames_flood",
                      "too many consecutive frames with an empty payload");
        }
      } else {
        consecutive_empty_frames_ = 0;
      }
      break;
    }
    case NGHTTP2_PRIORITY:
      inbound_priority_frames_++;
      if (inbound_priority_frames_ >
          static_cast<uint64_t>(settings_.max_inbound_priority_frames_per_stream) *
              (1 + inbound_streams_)) {
        stats_.inbound_priority_frames_flood.inc();
        return fail("http2.inbound_priority_frames_flood", "too many PRIORITY frames");
      }
      break;
    case NGHTTP2_WINDOW_UPDATE:
      inbound_window_update_frames_++;
      if (inbound_window_update_frames_ >
          5 + 2 * (inbound_streams_ +
                   static_cast<uint64_t>(
                       settings_.max_inbound_window_update_frames_per_data_frame_sent) *
                       outbound_data_frames_)) {
        stats_.inbound_window_update_frames_flood.inc();
        return fail("http2.inbound_window_update_frames_flood", "too many WINDOW_UPDATE frames");
      }
      break;
    default:
      break;
  }
  return 0;
}

int ServerConnectionImpl::onBeginHeaders(const nghttp2_frame& frame) {
  if (frame.headers.cat == NGHTTP2_HCAT_REQUEST) {
    auto stream = std::make_unique<StreamImpl>(*this, frame.hd.stream_id);
    nghttp2_session_set_stream_user_data(session_, frame.hd.stream_id, stream.get());
    stream->headers_->reserve(16);
    streams_[frame.hd.stream_id] = std::move(stream);
    inbound_streams_++;
    stats_.streams_active.inc();
    return 0;
  }
  StreamImpl* stream = getStream(frame.hd.stream_id);
  if (stream != nullptr && frame.headers.cat == NGHTTP2_HCAT_HEADERS) {
    // Trailers (nghttp2 refuses a second header block without END_STREAM).
    stream->trailers_ = std::make_unique<RequestTrailerMap>();
    stream->header_bytes_ = 0;
  }
  return 0;
}

int ServerConnectionImpl::onHeader(const nghttp2_frame& frame, std::string_view name,
                                   std::string_view value) {
  StreamImpl* stream = getStream(frame.hd.stream_id);
  if (stream == nullptr) {
    return 0;
  }
  HeaderMap& map = stream->trailers_ != nullptr ? static_cast<HeaderMap&>(*stream->trailers_)
                                                : static_cast<HeaderMap&>(*stream->headers_);
  stream->header_bytes_ += name.size() + value.size();
  if (stream->header_bytes_ > static_cast<uint64_t>(settings_.max_request_headers_kb) * 1024 ||
      map.size() + 1 > settings_.max_headers_count) {
    // nghttp2 resets the stream (INTERNAL_ERROR) on a temporal failure, as in Envoy.
    stats_.header_overflow.inc();
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  if (name == "cookie" && map.has("cookie")) {
    // RFC 9113 8.2.3: crumbled cookies are joined again, for an HTTP/1 upstream.
    std::string joined(map.getValue("cookie"));
    joined.append("; ");
    joined.append(value);
    map.setCopy("cookie", joined);
    return 0;
  }
  map.addCopy(name, value);
  return 0;
}

int ServerConnectionImpl::onDataChunk(int32_t stream_id, const uint8_t* data, size_t len) {
  StreamImpl* stream = getStream(stream_id);
  if (stream == nullptr) {
    nghttp2_session_consume_connection(session_, len);
    return 0;
  }
  stream->pending_recv_.add(data, len);
  if (stream->read_disable_count_ == 0) {
    nghttp2_session_consume(session_, stream_id, len);
  } else {
    stream->unconsumed_bytes_ += len;
  }
  return 0;
}

int ServerConnectionImpl::onFrameRecv(const nghttp2_frame& frame) {
  StreamImpl* stream = frame.hd.stream_id != 0 ? getStream(frame.hd.stream_id) : nullptr;
  switch (frame.hd.type) {
    case NGHTTP2_HEADERS: {
      if (stream == nullptr) {
        return 0;
      }
      const bool end_stream = (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
      stream->remote_end_ = end_stream;
      if (frame.headers.cat == NGHTTP2_HCAT_REQUEST) {
        RequestHeaderMap& headers = *stream->headers_;
        // RFC 9113 8.3.1: a request may carry Host instead of :authority.
        if (!headers.has(Headers::Authority) && headers.has(Headers::Host)) {
          const std::string host(headers.getValue(Headers::Host));
          headers.remove(Headers::Host);
          headers.addCopy(Headers::Authority, host);
        }
        stream->decoder_ = &callbacks_.newStream(*stream);
        stream->decoder_->decodeHeaders(std::move(stream->headers_), end_stream);
      } else if (stream->trailers_ != nullptr && stream->decoder_ != nullptr) {
        stream->decoder_->decodeTrailers(std::move(stream->trailers_));
      }
      return 0;
    }
    case NGHTTP2_DATA: {
      if (stream == nullptr) {
        return 0;
      }
      const bool end_stream = (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
      stream->remote_end_ = end_stream;
      if (stream->decoder_ != nullptr) {
        stream->decoder_->decodeData(stream->pending_recv_, end_stream);
      }
      stream->pending_recv_.drain(stream->pending_recv_.length());
      return 0;
    }
    case NGHTTP2_RST_STREAM:
      stats_.rx_reset.inc();
      if (stream != nullptr) {
        stream->remote_reset_ = true;
      }
      return 0;
    default:
      return 0;
  }
}

int ServerConnectionImpl::onInvalidFrame(const nghttp2_frame& frame, int lib_error) {
  if (lib_error == NGHTTP2_ERR_HTTP_HEADER || lib_error == NGHTTP2_ERR_HTTP_MESSAGING) {
    stats_.rx_messaging_error.inc();
    if (!settings_.stream_error_on_invalid_http_messaging) {
      // Envoy's default: the whole connection goes (checked against Envoy 1.40 by hand).
      return fail("http2.violation.of.messaging.rule", nghttp2_strerror(lib_error));
    }
    // nghttp2 resets the stream with PROTOCOL_ERROR; the connection goes on.
    if (StreamImpl* stream = getStream(frame.hd.stream_id); stream != nullptr) {
      stream->messaging_error_ = true;
    }
  }
  return 0;
}

int ServerConnectionImpl::onStreamClose(int32_t stream_id, uint32_t) {
  StreamImpl* stream = getStream(stream_id);
  if (stream == nullptr) {
    return 0;
  }
  auto it = streams_.find(stream_id);
  ASSERT(it != streams_.end());
  stream->closed_ = true;
  if (stream->unconsumed_bytes_ > 0) {
    nghttp2_session_consume_connection(session_, stream->unconsumed_bytes_);
    stream->unconsumed_bytes_ = 0;
  }
  if (!(stream->remote_end_ && stream->local_end_sent_)) {
    stream->runResetCallbacks(stream->remote_reset_      ? StreamResetReason::RemoteReset
                              : stream->messaging_error_ ? StreamResetReason::ProtocolError
                                                         : StreamResetReason::LocalReset);
  }
  stream->decoder_ = nullptr;
  nghttp2_session_set_stream_user_data(session_, stream_id, nullptr);
  stats_.streams_active.dec();
  // Freed at the next dispatch(): the connection manager may be unwinding it on the stack.
  closed_streams_.push_back(std::move(it->second));
  streams_.erase(it);
  return 0;
}

}  // namespace Proxy::Http::Http2
