#include "xds_client/grpc_transport_impl.h"

#include <malloc.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_certificate_verifier.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "grpcpp/support/channel_arguments.h"
#include "proxy/common/assert.h"
#include "proxy/common/tsan.h"
#include "proxy/tls/san_matcher.h"
#include "spdlog/spdlog.h"
#include "xds_client/config.h"
#include "xds_client/grpc_reactor_shim.h"

// gRPC orders a reactor's reactions after the operations that started them (StartCall,
// StartRead, RemoveHold, ...), but through its own synchronization, which TSAN cannot see in
// Debian's uninstrumented libgrpc. These annotations state that ordering on the reactor's
// address: release before handing the reactor to gRPC, acquire when gRPC calls back
// (PROXY_TSAN_HAPPENS_BEFORE / _AFTER, proxy/common/tsan.h).

namespace Proxy::Xds {
namespace {

// A received message at least this large has what its decode freed returned to the kernel.
constexpr size_t kTrimAfterBytes = 1 << 20;

// What the reactor (gRPC threads) and the transport (main thread) share. Outlives both.
class StreamShared {
 public:
  explicit StreamShared(Event::Dispatcher& dispatcher) : dispatcher_(&dispatcher) {}

  // Any thread: run `event` on the main thread if the transport still exists by then.
  void post(std::function<void(XdsTransport::EventHandler&)> event) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (dispatcher_ == nullptr) {
      return;
    }
    // Posting under our lock keeps the dispatcher alive while we use it: the transport clears
    // the pointer under the same lock before its owner can destroy the dispatcher.
    dispatcher_->post([self = self_.lock(), event = std::move(event)] {
      if (self != nullptr && self->handler != nullptr) {
        event(*self->handler);
      }
    });
  }

  // Any thread: same, for work on the transport's own state (not the handler's).
  void postInternal(std::function<void(StreamShared&)> work) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (dispatcher_ == nullptr) {
      return;
    }
    dispatcher_->post([self = self_.lock(), work = std::move(work)] {
      if (self != nullptr && self->handler != nullptr) {
        work(*self);
      }
    });
  }

  // Main thread: no posts after this returns.
  void detach() {
    std::lock_guard<std::mutex> lock(mutex_);
    dispatcher_ = nullptr;
  }

  // gRPC thread, from OnDone, after the reactor deleted itself.
  void markDone() {
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    done_cv_.notify_all();
  }

  bool waitDone(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return done_cv_.wait_for(lock, timeout, [this] { return done_; });
  }

  void setSelf(const std::shared_ptr<StreamShared>& self) { self_ = self; }

  // Main thread only. Cleared by the transport's destructor.
  XdsTransport::EventHandler* handler = nullptr;
  // Main thread only. Set once the main side released its hold on the reactor (after which
  // the reactor may finish and delete itself at any moment, so it must not be touched).
  bool hold_released = false;

 private:
  std::weak_ptr<StreamShared> self_;
  // std::mutex, not absl::Mutex: Debian's absl is not built with TSAN annotations, so TSAN
  // could not see the ordering an absl::Mutex provides.
  std::mutex mutex_;
  std::condition_variable done_cv_;
  Event::Dispatcher* dispatcher_ ABSL_GUARDED_BY(mutex_);
  bool done_ ABSL_GUARDED_BY(mutex_) = false;
};

// The logic of one stream, on gRPC's threads: a write queue (one write in flight), decoding,
// and hand-over to the main thread. Owned by the shim, so it lives until the call is done.
class StreamCore : public StreamReactions {
 public:
  StreamCore(bool delta, std::shared_ptr<StreamShared> shared)
      : delta_(delta), shared_(std::move(shared)) {}

  // Set once, before the call starts.
  void setShim(ReactorShim* shim) { shim_ = shim; }

  // Main thread, while the main side holds its hold on the shim.
  void send(std::string bytes) {
    std::optional<std::string> to_start;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (write_failed_) {
        return;
      }
      if (writing_) {
        write_queue_.push_back(std::move(bytes));
      } else {
        writing_ = true;
        to_start = std::move(bytes);
      }
    }
    // Outside the lock: a reaction may run inline from the write.
    if (to_start.has_value()) {
      ReactorShim* shim = shim_;  // read before the release: nothing of ours is read after it
      PROXY_TSAN_HAPPENS_BEFORE(this);
      reactorShimWrite(shim, std::move(*to_start));
    }
  }

  // Main thread, once.
  void releaseHold() {
    ReactorShim* shim = shim_;
    PROXY_TSAN_HAPPENS_BEFORE(this);
    reactorShimReleaseHold(shim);
  }

  // StreamReactions (gRPC threads)
  void onInitialMetadata(bool ok) override {
    PROXY_TSAN_HAPPENS_AFTER(this);
    if (ok) {
      reportConnected();
    }
    PROXY_TSAN_HAPPENS_BEFORE(this);
  }

  bool onRead(bool ok, std::string_view bytes) override {
    PROXY_TSAN_HAPPENS_AFTER(this);
    if (!ok) {
      // The server ended the stream (or it broke). The status comes with onDone, which needs
      // the main side's hold released: ask the main thread to do it.
      shared_->postInternal([this](StreamShared& shared) {
        if (!shared.hold_released) {
          shared.hold_released = true;
          releaseHold();
        }
      });
    } else {
      reportConnected();
      // Decoded here so that the main thread only does the bookkeeping.
      std::shared_ptr<DecodedResponse> response = decodeResponse(bytes, delta_);
      // glibc gives this thread its own malloc arena, and what a large message freed here
      // (gRPC's receive slices, the parse's temporaries: ~3x the message) would stay resident
      // in it, out of reach of the main thread, which is about to build hosts and clusters
      // from the response. Returned now, before the main thread takes it: 10,000 clusters
      // with 100,000 endpoints (2.5 MB) peak ~2.5 MiB lower; the trim takes ~0.8 ms against
      // the tens of milliseconds the decode took (issue 14).
      if (bytes.size() >= kTrimAfterBytes) {
        ::malloc_trim(0);
      }
      // The next read starts once the main thread has taken this response: at most one
      // decoded response waits for it, and a management server that sends faster than the
      // main thread applies is held back by the stream's HTTP/2 flow control (as when Envoy
      // reads on its main thread) instead of queueing here without bound.
      shared_->postInternal([this, response](StreamShared& shared) {
        shared.handler->onResponse(std::make_unique<DecodedResponse>(std::move(*response)));
        // The handler may have destroyed the transport (which clears both).
        if (shared.handler != nullptr && !shared.hold_released) {
          startRead();
        }
      });
    }
    PROXY_TSAN_HAPPENS_BEFORE(this);
    return false;
  }

  // Main thread, while the main side holds its hold on the shim.
  void startRead() {
    ReactorShim* shim = shim_;
    PROXY_TSAN_HAPPENS_BEFORE(this);
    reactorShimStartRead(shim);
  }

  void onWriteDone(bool ok) override {
    PROXY_TSAN_HAPPENS_AFTER(this);
    if (ok) {
      reportConnected();
    }
    std::optional<std::string> next;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!ok) {
        // The stream is broken; the read side reports it. Drop what is queued.
        write_failed_ = true;
        write_queue_.clear();
        writing_ = false;
      } else if (!write_queue_.empty()) {
        next = std::move(write_queue_.front());
        write_queue_.pop_front();
      } else {
        writing_ = false;
      }
    }
    ReactorShim* shim = shim_;
    PROXY_TSAN_HAPPENS_BEFORE(this);
    if (next.has_value()) {
      reactorShimWrite(shim, std::move(*next));
    }
  }

  std::function<void()> onDone(int code, const std::string& message) override {
    PROXY_TSAN_HAPPENS_AFTER(this);
    shared_->post([status = absl::Status(static_cast<absl::StatusCode>(code), message)](
                      XdsTransport::EventHandler& handler) { handler.onStreamClosed(status); });
    // Runs after the shim (and this) are deleted.
    return [shared = shared_] { shared->markDone(); };
  }

 private:
  void reportConnected() {
    if (!connected_.exchange(true)) {
      shared_->post([](XdsTransport::EventHandler& handler) { handler.onConnected(); });
    }
  }

  const bool delta_;
  const std::shared_ptr<StreamShared> shared_;
  ReactorShim* shim_ = nullptr;
  std::atomic<bool> connected_{false};

  std::mutex mutex_;
  std::deque<std::string> write_queue_ ABSL_GUARDED_BY(mutex_);
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mutex_) = false;
};

// Envoy's match_typed_subject_alt_names on the management server's certificate, for a channel
// with ChannelTls::Rules::EnvoyUpstream: one matching name is enough. gRPC runs it after its
// chain check (when there are root certificates) and before the channel is ready.
class SanVerifier : public grpc::experimental::ExternalCertificateVerifier {
 public:
  explicit SanVerifier(std::vector<Tls::SanMatcher> matchers) : matchers_(std::move(matchers)) {}

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)>, grpc::Status* sync_status) override {
    const std::pair<int, std::vector<grpc::string_ref>> names[] = {
        {GEN_DNS, request->dns_names()},
        {GEN_URI, request->uri_names()},
        {GEN_EMAIL, request->email_names()},
        {GEN_IPADD, request->ip_names()}};
    for (const auto& [type, values] : names) {
      for (const grpc::string_ref& value : values) {
        const std::string san(value.data(), value.size());
        for (const Tls::SanMatcher& matcher : matchers_) {
          if (matcher.matches(type, san)) {
            *sync_status = grpc::Status::OK;
            return true;  // decided synchronously
          }
        }
      }
    }
    *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                "the management server's certificate matches none of "
                                "match_typed_subject_alt_names");
    return true;
  }

  void Cancel(grpc::experimental::TlsCustomVerificationCheckRequest*) override {}

 private:
  const std::vector<Tls::SanMatcher> matchers_;
};

// Envoy's TLS transport socket rules on a gRPC channel (ChannelTls::Rules::EnvoyUpstream):
// gRPC's TLS credentials with the chain checked only when trusted_ca was given, no host name
// check, the SAN matchers as the certificate verifier.
std::shared_ptr<grpc::ChannelCredentials> envoyUpstreamCredentials(const ChannelTls& tls) {
  std::vector<grpc::experimental::IdentityKeyCertPair> identity;
  if (!tls.cert_chain.empty()) {
    identity.push_back({tls.private_key, tls.cert_chain});
  }
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(
      std::make_shared<grpc::experimental::StaticDataCertificateProvider>(tls.root_certs,
                                                                          identity));
  if (!tls.root_certs.empty()) {
    options.watch_root_certs();
  }
  if (!identity.empty()) {
    options.watch_identity_key_cert_pairs();
  }
  options.set_verify_server_certs(!tls.root_certs.empty());
  options.set_check_call_host(false);
  if (tls.san_matchers.empty()) {
    options.set_certificate_verifier(
        std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  } else {
    std::vector<Tls::SanMatcher> matchers;
    for (const std::string& serialized : tls.san_matchers) {
      envoy::extensions::transport_sockets::tls::v3::SubjectAltNameMatcher proto;
      proto.ParseFromString(serialized);
      auto matcher = Tls::SanMatcher::create(proto, "");
      ASSERT(matcher.ok());  // validated with the bootstrap (config.cc)
      if (matcher.ok()) {
        matchers.push_back(*std::move(matcher));
      }
    }
    options.set_certificate_verifier(
        grpc::experimental::ExternalCertificateVerifier::Create<SanVerifier>(std::move(matchers)));
  }
  return grpc::experimental::TlsCredentials(options);
}

// The channel's credentials: plaintext, gRPC's SSL credentials, or Envoy's rules (ChannelTls).
std::shared_ptr<grpc::ChannelCredentials> channelCredentials(const std::optional<ChannelTls>& tls) {
  if (!tls.has_value()) {
    return grpc::InsecureChannelCredentials();
  }
  if (tls->rules == ChannelTls::Rules::EnvoyUpstream) {
    return envoyUpstreamCredentials(*tls);
  }
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = tls->root_certs;
  options.pem_private_key = tls->private_key;
  options.pem_cert_chain = tls->cert_chain;
  return grpc::SslCredentials(options);
}

class GrpcXdsTransport : public XdsTransport {
 public:
  GrpcXdsTransport(Event::Dispatcher& main, std::shared_ptr<grpc::Channel> channel,
                   std::string_view method, bool delta, EventHandler& handler,
                   std::chrono::milliseconds shutdown_wait)
      : shared_(std::make_shared<StreamShared>(main)), shutdown_wait_(shutdown_wait) {
    shared_->setSelf(shared_);
    shared_->handler = &handler;
    auto core = std::make_unique<StreamCore>(delta, shared_);
    core_ = core.get();
    shim_ = createReactorShim(std::move(channel), std::string(method), std::move(core));
    core_->setShim(shim_);
    PROXY_TSAN_HAPPENS_BEFORE(core_);
    reactorShimStart(shim_);
  }

  ~GrpcXdsTransport() override {
    shared_->handler = nullptr;
    shared_->detach();
    if (!shared_->hold_released) {
      shared_->hold_released = true;
      reactorShimCancel(shim_);
      core_->releaseHold();
    }
    // The shim finishes on a gRPC thread; wait so that nothing of ours is used after the
    // client is gone (the shim holds only shared state, but the wait also makes shutdown
    // ordering deterministic for tests and for gRPC's own teardown).
    if (!shared_->waitDone(shutdown_wait_)) {
      spdlog::error("xds: a gRPC stream did not finish within {} ms of being cancelled",
                    shutdown_wait_.count());
    }
  }

  void sendMessage(std::string serialized_request) override {
    if (shared_->hold_released) {
      return;  // the stream is ending; onStreamClosed follows
    }
    core_->send(std::move(serialized_request));
  }

 private:
  const std::shared_ptr<StreamShared> shared_;
  const std::chrono::milliseconds shutdown_wait_;
  // Valid while shared_->hold_released is false (the shim owns the core).
  ReactorShim* shim_ = nullptr;
  StreamCore* core_ = nullptr;
};

}  // namespace

GrpcXdsTransportFactory::GrpcXdsTransportFactory(Event::Dispatcher& main,
                                                 GrpcTransportOptions options)
    : main_(main), options_(options) {}

GrpcXdsTransportFactory::~GrpcXdsTransportFactory() = default;

XdsTransportPtr GrpcXdsTransportFactory::createTransport(const XdsStreamConfig& config,
                                                         std::string_view method,
                                                         XdsTransport::EventHandler& handler) {
  ASSERT(main_.isThreadSafe());
  auto existing = std::find_if(channels_.begin(), channels_.end(), [&](const Channel& channel) {
    return channel.target == config.target && channel.tls == config.tls;
  });
  std::shared_ptr<grpc::Channel> channel;
  if (existing != channels_.end()) {
    channel = existing->channel;
  } else {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                static_cast<int>(options_.reconnect_backoff_min.count()));
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
                static_cast<int>(options_.reconnect_backoff_min.count()));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                static_cast<int>(options_.reconnect_backoff_max.count()));
    args.SetString(
        GRPC_ARG_PRIMARY_USER_AGENT_STRING,
        absl::StrCat(kUserAgentName, "/", kVersionMajor, ".", kVersionMinor, ".", kVersionPatch));
    if (config.tls.has_value() && !config.tls->sni.empty()) {
      // Envoy's sni: the name sent in the ClientHello (no host name check: SanVerifier).
      args.SetSslTargetNameOverride(config.tls->sni);
    }
    channel = grpc::CreateCustomChannel(config.target, channelCredentials(config.tls), args);
    channels_.push_back({config.target, config.tls, channel});
  }
  return std::make_unique<GrpcXdsTransport>(main_, channel, method, config.delta, handler,
                                            options_.shutdown_wait);
}

}  // namespace Proxy::Xds
