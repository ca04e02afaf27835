#include "proxy/http/http2/client_connection_impl.h"

#include <algorithm>
#include <string>

#include "proxy/common/assert.h"

namespace Proxy::Http::Http2 {
namespace {

// RFC 9113 8.2.2: connection-specific fields must not travel over HTTP/2 ("te" only as
// "trailers"); Host becomes :authority.
bool isConnectionSpecific(std::string_view name, std::string_view value) {
  return name == Headers::Connection || name == Headers::KeepAlive ||
         name == Headers::ProxyConnection || name == Headers::TransferEncoding ||
         name == Headers::Upgrade || name == "http2-settings" ||
         (name == Headers::Te && value != "trailers");
}

nghttp2_nv makeNv(std::string_view name, std::string_view value) {
  // nghttp2 copies name and value when the request is submitted (no NO_COPY flags).
  return nghttp2_nv{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
                    const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())),
                    name.size(), value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

ClientCodecStats::ClientCodecStats(Stats::Scope scope)
    : rx_reset(scope.counter("http2.rx_reset")),
      tx_reset(scope.counter("http2.tx_reset")),
      header_overflow(scope.counter("http2.header_overflow")),
      rx_messaging_error(scope.counter("http2.rx_messaging_error")),
      trailers(scope.counter("http2.trailers")),
      goaway_sent(scope.counter("http2.goaway_sent")),
      streams_active(scope.gauge("http2.streams_active")),
      pending_send_bytes(scope.gauge("http2.pending_send_bytes")) {}

// ---- ClientConnectionImpl ----

ClientConnectionImpl::ClientConnectionImpl(Event::Dispatcher& dispatcher, CodecOutput& output,
                                           ClientConnectionCallbacks& callbacks,
                                           const Http2Settings& settings, ClientCodecStats& stats)
    : dispatcher_(dispatcher),
      output_(output),
      callbacks_(callbacks),
      settings_(settings),
      stats_(stats) {
  nghttp2_session_callbacks* cbs;
  RELEASE_ASSERT(nghttp2_session_callbacks_new(&cbs) == 0, "nghttp2 out of memory");
  nghttp2_session_callbacks_set_send_callback(cbs, &onSend);
  nghttp2_session_callbacks_set_send_data_callback(cbs, &onSendData);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &onHeaderCb);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &onDataChunkRecv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &onStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &onFrameSend);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, &onInvalidFrameRecv);
  nghttp2_option* options;
  RELEASE_ASSERT(nghttp2_option_new(&options) == 0, "nghttp2 out of memory");
  // Windows are re-opened by hand, as body bytes are handed on and only while the stream is not
  // read-disabled: that is the per-stream backpressure.
  nghttp2_option_set_no_auto_window_update(options, 1);
  const int rc = nghttp2_session_client_new2(&session_, cbs, this, options);
  nghttp2_option_del(options);
  nghttp2_session_callbacks_del(cbs);
  RELEASE_ASSERT(rc == 0, "nghttp2 out of memory");

  // Sent with the connection preface on the first write.
  const nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings_.initial_stream_window_size},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
  if (settings_.initial_connection_window_size > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE) {
    nghttp2_session_set_local_window_size(
        session_, NGHTTP2_FLAG_NONE, 0,
        static_cast<int32_t>(settings_.initial_connection_window_size));
  }
}

ClientConnectionImpl::~ClientConnectionImpl() {
  // Streams still open are dropped without callbacks (the owner is going away).
  for (StreamImplPtr& stream : active_streams_) {
    stats_.streams_active.dec();
    stats_.pending_send_bytes.sub(static_cast<int64_t>(stream->pending_send_data_.length()));
    stream->closed_ = true;
  }
  active_streams_.clear();
  nghttp2_session_del(session_);
}

uint32_t ClientConnectionImpl::peerMaxConcurrentStreams() const {
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

bool ClientConnectionImpl::remoteWantsClose() const {
  return goaway_received_ || sessionOver();
}

bool ClientConnectionImpl::sessionOver() const {
  return closed_ ||
         (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0);
}

absl::Status ClientConnectionImpl::dispatch(Buffer::Instance& data) {
  ASSERT(!dispatching_);
  if (closed_) {
    data.drain(data.length());
    return error_.details.empty() ? absl::OkStatus() : absl::InternalError(error_.details);
  }
  dispatching_ = true;
  ssize_t rc = 0;
  while (data.length() > 0 && rc >= 0 && !closed_) {
    Buffer::RawSlice slices[16];
    const size_t count = std::min<size_t>(data.getRawSlices(slices, 16), 16);
    uint64_t consumed = 0;
    for (size_t i = 0; i < count && !closed_; i++) {
      rc = nghttp2_session_mem_recv(session_, static_cast<const uint8_t*>(slices[i].mem),
                                    slices[i].len);
      if (rc < 0) {
        break;
      }
      consumed += slices[i].len;
    }
    data.drain(rc < 0 || closed_ ? data.length() : consumed);
  }
  dispatching_ = false;
  if (rc < 0) {
    // nghttp2 gave up on the session (a flood, a malformed frame it could not recover from):
    // its GOAWAY goes out, and every stream on the connection ends.
    stats_.rx_messaging_error.inc();
    onProtocolError(std::string("http2.") + nghttp2_strerror(static_cast<int>(rc)));
    return absl::InternalError(error_.details);
  }
  sendPendingFrames();
  return absl::OkStatus();
}

void ClientConnectionImpl::onProtocolError(std::string details) {
  error_ = CodecError{502, std::move(details)};
  sendPendingFrames();
  closed_ = true;
  while (!active_streams_.empty()) {
    active_streams_.front()->onConnectionGone(StreamResetReason::ProtocolError);
  }
}

void ClientConnectionImpl::onUnderlyingConnectionAboveWriteBufferHighWatermark() {
  above_high_watermark_ = true;
  for (auto it = active_streams_.begin(); it != active_streams_.end();) {
    StreamImpl& stream = **it++;  // a callback may reset (and unlink) this stream
    stream.watermarkUp();
  }
}

void ClientConnectionImpl::onUnderlyingConnectionBelowWriteBufferLowWatermark() {
  above_high_watermark_ = false;
  for (auto it = active_streams_.begin(); it != active_streams_.end();) {
    StreamImpl& stream = **it++;
    stream.watermarkDown();
  }
}

RequestEncoder& ClientConnectionImpl::newStream(ResponseDecoder& response_decoder) {
  ASSERT(!closed_);
  auto stream = std::make_unique<StreamImpl>(*this, response_decoder);
  StreamImpl& raw = *stream;
  active_streams_.push_back(std::move(stream));
  raw.it_ = std::prev(active_streams_.end());
  stats_.streams_active.inc();
  if (above_high_watermark_) {
    raw.watermark_count_ = 1;
  }
  if (closed_) {
    // Defensive: a stream on a dead connection ends at once instead of hanging.
    raw.onConnectionGone(StreamResetReason::ConnectionTermination);
  }
  return raw;
}

void ClientConnectionImpl::onConnectionClose() {
  if (closed_) {
    return;
  }
  closed_ = true;
  while (!active_streams_.empty()) {
    active_streams_.front()->onConnectionGone(StreamResetReason::ConnectionTermination);
  }
}

void ClientConnectionImpl::sendPendingFrames() {
  if (dispatching_ || closed_) {
    return;  // dispatch() sends once nghttp2 has returned (no send from inside its callbacks)
  }
  const int rc = nghttp2_session_send(session_);
  if (output_buffer_.length() > 0) {
    output_.write(output_buffer_, false);
  }
  if (rc != 0 && !closed_) {
    onProtocolError(std::string("http2.") + nghttp2_strerror(rc));
  }
}

void ClientConnectionImpl::onStreamClosed(StreamImpl& stream) {
  stats_.streams_active.dec();
  stats_.pending_send_bytes.sub(static_cast<int64_t>(stream.pending_send_data_.length()));
  stream.pending_send_data_.drain(stream.pending_send_data_.length());
  StreamImplPtr owned = std::move(*stream.it_);
  active_streams_.erase(stream.it_);
  // Whoever holds the encoder may still call it while unwinding (see the header).
  dispatcher_.deferredDelete(std::move(owned));
}

ClientConnectionImpl::StreamImpl* ClientConnectionImpl::streamFrom(nghttp2_session* session,
                                                                   int32_t stream_id) {
  return static_cast<StreamImpl*>(nghttp2_session_get_stream_user_data(session, stream_id));
}

// ---- nghttp2 callbacks ----

ssize_t ClientConnectionImpl::onSend(nghttp2_session*, const uint8_t* data, size_t length, int,
                                     void* user) {
  static_cast<ClientConnectionImpl*>(user)->output_buffer_.add(data, length);
  return static_cast<ssize_t>(length);
}

int ClientConnectionImpl::onSendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                                     size_t length, nghttp2_data_source* source, void* user) {
  auto* self = static_cast<ClientConnectionImpl*>(user);
  auto* stream = static_cast<StreamImpl*>(source->ptr);
  ASSERT(frame->data.padlen == 0);
  self->output_buffer_.add(framehd, 9);
  // The body moves from the stream's buffer to the connection without a copy.
  self->output_buffer_.move(stream->pending_send_data_, length);
  stream->onDataSent(length);
  return 0;
}

ssize_t ClientConnectionImpl::onDataSourceReadCb(nghttp2_session*, int32_t, uint8_t*, size_t length,
                                                 uint32_t* data_flags, nghttp2_data_source* source,
                                                 void*) {
  return static_cast<StreamImpl*>(source->ptr)->onDataSourceRead(length, data_flags);
}

int ClientConnectionImpl::onBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame,
                                         void*) {
  StreamImpl* stream = streamFrom(session, frame->hd.stream_id);
  if (stream != nullptr && !stream->closed()) {
    stream->headers_ = std::make_unique<ResponseHeaderMap>();
    stream->receiving_bytes_ = 0;
  }
  return 0;
}

int ClientConnectionImpl::onHeaderCb(nghttp2_session* session, const nghttp2_frame* frame,
                                     const uint8_t* name, size_t namelen, const uint8_t* value,
                                     size_t valuelen, uint8_t, void* user) {
  auto* self = static_cast<ClientConnectionImpl*>(user);
  StreamImpl* stream = streamFrom(session, frame->hd.stream_id);
  if (stream == nullptr || stream->closed() || stream->headers_ == nullptr) {
    return 0;
  }
  stream->receiving_bytes_ += namelen + valuelen;
  if (stream->receiving_bytes_ > uint64_t{self->settings_.max_response_headers_kb} * 1024 ||
      stream->headers_->size() >= self->settings_.max_headers_count) {
    // nghttp2 resets the stream (RST_STREAM INTERNAL_ERROR); onClose reports ProtocolError.
    self->stats_.header_overflow.inc();
    stream->header_overflow_ = true;
    stream->headers_.reset();
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  stream->onHeader(std::string_view(reinterpret_cast<const char*>(name), namelen),
                   std::string_view(reinterpret_cast<const char*>(value), valuelen));
  return 0;
}

int ClientConnectionImpl::onFrameRecv(nghttp2_session* session, const nghttp2_frame* frame,
                                      void* user) {
  auto* self = static_cast<ClientConnectionImpl*>(user);
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA: {
      StreamImpl* stream = streamFrom(session, frame->hd.stream_id);
      if (stream == nullptr || stream->closed()) {
        return 0;
      }
      const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
      if (frame->hd.type == NGHTTP2_HEADERS) {
        stream->onHeadersComplete(end_stream);
      } else {
        stream->onDataFrameComplete(end_stream);
      }
      return 0;
    }
    case NGHTTP2_RST_STREAM: {
      self->stats_.rx_reset.inc();
      StreamImpl* stream = streamFrom(session, frame->hd.stream_id);
      if (stream != nullptr) {
        stream->remote_reset_ = true;
      }
      return 0;
    }
    case NGHTTP2_GOAWAY:
      self->goaway_received_ = true;
      self->callbacks_.onGoAway(frame->goaway.error_code, frame->goaway.last_stream_id);
      return 0;
    case NGHTTP2_SETTINGS:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
        self->callbacks_.onMaxConcurrentStreamsChanged(self->peerMaxConcurrentStreams());
      }
      return 0;
    default:
      return 0;
  }
}

int ClientConnectionImpl::onDataChunkRecv(nghttp2_session* session, uint8_t, int32_t stream_id,
                                          const uint8_t* data, size_t len, void* user) {
  auto* self = static_cast<ClientConnectionImpl*>(user);
  // The connection window re-opens at once: one paused stream must not stall the others.
  nghttp2_session_consume_connection(session, len);
  StreamImpl* stream = streamFrom(session, stream_id);
  if (stream == nullptr || stream->closed()) {
    return 0;
  }
  (void)self;
  stream->onData(data, len);
  return 0;
}

int ClientConnectionImpl::onStreamClose(nghttp2_session* session, int32_t stream_id,
                                        uint32_t error_code, void*) {
  StreamImpl* stream = streamFrom(session, stream_id);
  if (stream != nullptr && !stream->closed()) {
    stream->onClose(error_code);
  }
  return 0;
}

int ClientConnectionImpl::onFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<ClientConnectionImpl*>(user);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    self->stats_.goaway_sent.inc();
  }
  return 0;
}

int ClientConnectionImpl::onInvalidFrameRecv(nghttp2_session* session, const nghttp2_frame* frame,
                                             int, void* user) {
  // nghttp2 resets the stream (or the session) itself; we count it and say why on close.
  static_cast<ClientConnectionImpl*>(user)->stats_.rx_messaging_error.inc();
  StreamImpl* stream = streamFrom(session, frame->hd.stream_id);
  if (stream != nullptr) {
    stream->messaging_error_ = true;
  }
  return 0;
}

// ---- StreamImpl ----

ClientConnectionImpl::StreamImpl::StreamImpl(ClientConnectionImpl& parent, ResponseDecoder& decoder)
    : parent_(parent), decoder_(&decoder) {}

void ClientConnectionImpl::StreamImpl::encodeHeaders(const RequestHeaderMap& headers,
                                                     bool end_stream) {
  if (closed_ || headers_started_) {
    return;
  }
  headers_started_ = true;
  local_end_stream_ = end_stream;
  std::vector<nghttp2_nv>& nva = parent_.nva_;
  nva.clear();
  nva.reserve(headers.size() + 4);
  const std::string_view method = headers.method();
  const std::string_view scheme = headers.scheme();
  const std::string_view path = headers.path();
  nva.push_back(makeNv(Headers::Method, method));
  nva.push_back(makeNv(Headers::Scheme, scheme.empty() ? std::string_view("http") : scheme));
  const bool has_authority = headers.has(Headers::Authority);
  if (has_authority) {
    nva.push_back(makeNv(Headers::Authority, headers.host()));
  }
  nva.push_back(makeNv(Headers::Path, path.empty() ? std::string_view("/") : path));
  for (const HeaderEntry& entry : headers) {
    if (entry.key.empty() || entry.key[0] == ':' || isConnectionSpecific(entry.key, entry.value) ||
        (entry.key == Headers::Host && has_authority)) {
      continue;
    }
    nva.push_back(makeNv(entry.key, entry.value));
  }
  nghttp2_data_provider provider;
  provider.source.ptr = this;
  provider.read_callback = &ClientConnectionImpl::onDataSourceReadCb;
  const int32_t id = nghttp2_submit_request(parent_.session_, nullptr, nva.data(), nva.size(),
                                            end_stream ? nullptr : &provider, this);
  if (id < 0) {
    // No stream id left on this connection (2^31 used) or nghttp2 refused the block: the
    // request never left, so it is safe to retry elsewhere.
    onConnectionGone(StreamResetReason::LocalRefusedStreamReset);
    return;
  }
  stream_id_ = id;
  parent_.sendPendingFrames();
}

void ClientConnectionImpl::StreamImpl::encodeData(Buffer::Instance& data, bool end_stream) {
  if (closed_ || !headers_started_ || local_end_stream_) {
    data.drain(data.length());
    return;
  }
  parent_.stats_.pending_send_bytes.add(static_cast<int64_t>(data.length()));
  pending_send_data_.move(data);
  local_end_stream_ = end_stream;
  if (!send_buffer_above_ && pending_send_data_.length() > parent_.settings_.stream_buffer_limit) {
    send_buffer_above_ = true;
    watermarkUp();
  }
  if (data_deferred_ && stream_id_ > 0) {
    data_deferred_ = false;
    nghttp2_session_resume_data(parent_.session_, stream_id_);
  }
  parent_.sendPendingFrames();
}

void ClientConnectionImpl::StreamImpl::encodeTrailers(const RequestTrailerMap& trailers) {
  if (closed_ || !headers_started_ || local_end_stream_) {
    return;
  }
  // The body (if any) goes first; the data source ends it without END_STREAM and submits these.
  pending_trailers_ = std::make_unique<RequestTrailerMap>(trailers);
  local_end_stream_ = true;
  if (data_deferred_ && stream_id_ > 0) {
    data_deferred_ = false;
    nghttp2_session_resume_data(parent_.session_, stream_id_);
  }
  parent_.sendPendingFrames();
}

void ClientConnectionImpl::StreamImpl::addCallbacks(StreamCallbacks& callbacks) {
  callbacks_.add(callbacks, watermark_count_ > 0);
}

void ClientConnectionImpl::StreamImpl::resetStream(StreamResetReason reason) {
  if (closed_) {
    return;
  }
  parent_.stats_.tx_reset.inc();
  ResponseDecoder* decoder = decoder_;
  decoder_ = nullptr;
  reset_reported_ = true;
  if (stream_id_ > 0) {
    // Envoy's codes: REFUSED_STREAM for a refused stream, NO_ERROR otherwise.
    nghttp2_submit_rst_stream(parent_.session_, NGHTTP2_FLAG_NONE, stream_id_,
                              reason == StreamResetReason::LocalRefusedStreamReset
                                  ? NGHTTP2_REFUSED_STREAM
                                  : NGHTTP2_NO_ERROR);
  }
  if (decoder != nullptr) {
    callbacks_.runReset(reason);
  }
  if (stream_id_ > 0) {
    // on_stream_close follows once the RST_STREAM is out.
    parent_.sendPendingFrames();
  } else {
    onConnectionGone(reason);
  }
}

void ClientConnectionImpl::StreamImpl::readDisable(bool disable) {
  if (closed_) {
    return;
  }
  if (disable) {
    read_disable_count_++;
    return;
  }
  if (read_disable_count_ == 0) {
    return;
  }
  read_disable_count_--;
  if (read_disable_count_ == 0 && unconsumed_bytes_ > 0 && stream_id_ > 0) {
    nghttp2_session_consume_stream(parent_.session_, stream_id_, unconsumed_bytes_);
    unconsumed_bytes_ = 0;
    parent_.sendPendingFrames();
  }
}

ssize_t ClientConnectionImpl::StreamImpl::onDataSourceRead(size_t length, uint32_t* data_flags) {
  const uint64_t available = pending_send_data_.length();
  const size_t n = static_cast<size_t>(std::min<uint64_t>(length, available));
  if (n == 0 && !local_end_stream_) {
    data_deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (local_end_stream_ && n == available) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    if (pending_trailers_ != nullptr) {
      // The stream ends with the trailers' HEADERS frame instead of this DATA frame.
      *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      std::vector<nghttp2_nv> nva;
      nva.reserve(pending_trailers_->size());
      for (const HeaderEntry& entry : *pending_trailers_) {
        if (!entry.key.empty() && entry.key[0] != ':' &&
            !isConnectionSpecific(entry.key, entry.value)) {
          nva.push_back(makeNv(entry.key, entry.value));
        }
      }
      nghttp2_submit_trailer(parent_.session_, stream_id_, nva.data(), nva.size());
      pending_trailers_.reset();
    }
  }
  return static_cast<ssize_t>(n);
}

void ClientConnectionImpl::StreamImpl::onDataSent(size_t length) {
  parent_.stats_.pending_send_bytes.sub(static_cast<int64_t>(length));
  if (send_buffer_above_ &&
      pending_send_data_.length() <= parent_.settings_.stream_buffer_limit / 2) {
    send_buffer_above_ = false;
    watermarkDown();
  }
}

void ClientConnectionImpl::StreamImpl::watermarkUp() {
  if (watermark_count_++ == 0 && !closed_) {
    callbacks_.runAboveHighWatermark();
  }
}

void ClientConnectionImpl::StreamImpl::watermarkDown() {
  if (watermark_count_ > 0 && --watermark_count_ == 0 && !closed_) {
    callbacks_.runBelowLowWatermark();
  }
}

void ClientConnectionImpl::StreamImpl::onHeader(std::string_view name, std::string_view value) {
  headers_->addCopy(name, value);
}

void ClientConnectionImpl::StreamImpl::onHeadersComplete(bool end_stream) {
  if (headers_ == nullptr || decoder_ == nullptr) {
    return;
  }
  ResponseHeaderMapPtr headers = std::move(headers_);
  if (!final_headers_) {
    const uint32_t status = headers->status();
    if (status >= 100 && status < 200) {
      // Informational: the final response follows on the same stream.
      if (status == 100) {
        decoder_->decode100ContinueHeaders(std::move(headers));
      }
      return;
    }
    final_headers_ = true;
    if (end_stream) {
      remote_end_stream_ = true;
      ResponseDecoder* decoder = decoder_;
      decoder_ = nullptr;
      decoder->decodeHeaders(std::move(headers), true);
      return;
    }
    decoder_->decodeHeaders(std::move(headers), false);
    return;
  }
  // A second header block after the response headers is the trailers (nghttp2 makes sure it
  // ends the stream). The response ends here.
  parent_.stats_.trailers.inc();
  remote_end_stream_ = true;
  ResponseDecoder* decoder = decoder_;
  decoder_ = nullptr;
  auto trailers = std::make_unique<ResponseTrailerMap>();
  trailers->reserve(headers->size());
  for (const HeaderEntry& entry : *headers) {
    trailers->addCopy(entry.key, entry.value);
  }
  decoder->decodeTrailers(std::move(trailers));
}

void ClientConnectionImpl::StreamImpl::onData(const uint8_t* data, size_t length) {
  if (decoder_ != nullptr) {
    body_.add(data, length);
    decoder_->decodeData(body_, false);
    body_.drain(body_.length());
  }
  if (closed_ || stream_id_ <= 0) {
    return;
  }
  if (read_disable_count_ == 0) {
    nghttp2_session_consume_stream(parent_.session_, stream_id_, length);
  } else {
    unconsumed_bytes_ += length;
  }
}

void ClientConnectionImpl::StreamImpl::onDataFrameComplete(bool end_stream) {
  if (!end_stream || decoder_ == nullptr) {
    return;
  }
  remote_end_stream_ = true;
  ResponseDecoder* decoder = decoder_;
  decoder_ = nullptr;
  Buffer::Instance empty;
  decoder->decodeData(empty, true);
}

void ClientConnectionImpl::StreamImpl::onClose(uint32_t error_code) {
  closed_ = true;
  if (decoder_ != nullptr && !reset_reported_) {
    StreamResetReason reason = StreamResetReason::ConnectionTermination;
    if (error_code == NGHTTP2_REFUSED_STREAM) {
      // RST_STREAM(REFUSED_STREAM), or above a GOAWAY's last stream id: never processed.
      reason = StreamResetReason::RemoteRefusedStreamReset;
    } else if (remote_reset_) {
      reason = StreamResetReason::RemoteReset;
    } else if (header_overflow_ || messaging_error_ || error_code == NGHTTP2_PROTOCOL_ERROR) {
      reason = StreamResetReason::ProtocolError;
    }
    decoder_ = nullptr;
    reset_reported_ = true;
    callbacks_.runReset(reason);
  }
  decoder_ = nullptr;
  parent_.onStreamClosed(*this);
}

void ClientConnectionImpl::StreamImpl::onConnectionGone(StreamResetReason reason) {
  if (closed_) {
    return;
  }
  closed_ = true;
  if (decoder_ != nullptr && !reset_reported_) {
    decoder_ = nullptr;
    reset_reported_ = true;
    callbacks_.runReset(reason);
  }
  decoder_ = nullptr;
  parent_.onStreamClosed(*this);
}

}  // namespace Proxy::Http::Http2
