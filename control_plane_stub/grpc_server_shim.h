#pragma once

// Internal to xds_server_impl.cc: the only code that touches gRPC's server and callback-API
// types. It forwards each call's reactions to ServerStreamReactions and does nothing else, so
// the logic stays in xds_server_impl.cc.
//
// Built without ThreadSanitizer instrumentation in TSAN builds: Debian's gRPC is not
// instrumented, and gRPC's header-only templates instantiated here would otherwise report races
// on state gRPC orders through synchronization TSAN cannot see. The instrumented side states
// gRPC's ordering with annotations (see xds_server_impl.cc). Free functions rather than virtual
// methods on the shim: a call then does not read the shim's memory from instrumented code.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace Proxy::ControlPlane {

// One call (an RPC) on the server. Owns itself; deletes itself after onDone().
class ServerStreamShim;

// Called on gRPC's threads. Reactions may run concurrently with each other, except onDone(),
// which is last.
class ServerStreamReactions {
 public:
  virtual ~ServerStreamReactions() = default;
  // A message (`ok`; `bytes` valid during the call only), or the end of the client's side
  // (!ok). The next read starts only when shimStartRead() is called again.
  virtual void onRead(bool ok, std::string_view bytes) = 0;
  virtual void onWriteDone(bool ok) = 0;
  // The call was cancelled (client gone, deadline, server shutdown).
  virtual void onCancel() = 0;
  // Every operation is over. The shim never calls the reactions again and deletes itself.
  virtual void onDone() = 0;
};

// Makes the reactions of a new call, on a gRPC thread; null when `method` is not served (the
// call is then finished with UNIMPLEMENTED). The reactions own themselves.
using ReactionsFactory = std::function<ServerStreamReactions*(
    const std::string& method, const std::string& peer, ServerStreamShim* shim)>;

// TLS for the xDS port, PEM text. With `client_ca`, clients must present a certificate that
// chains to it (mTLS); without, none is asked for.
struct ServerTls {
  std::string cert_chain;
  std::string private_key;
  std::string client_ca;
};

class GrpcServerShim {
 public:
  // Binds `address` and starts serving every method through `factory`, over TLS when `tls` is
  // set. Null when it cannot listen; `*port` is the bound port.
  static std::unique_ptr<GrpcServerShim> start(const std::string& address, ReactionsFactory factory,
                                               int* port, const std::optional<ServerTls>& tls);
  ~GrpcServerShim();

  // Cancels every call at once and stops accepting new ones. Idempotent.
  void shutdown();

 private:
  class Impl;
  explicit GrpcServerShim(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Starts the next read (one at a time).
void shimStartRead(ServerStreamShim* shim);
// Writes one message made of `pieces` (concatenated on the wire, not copied: each slice keeps
// its piece alive). One write at a time: the next only after onWriteDone().
void shimWrite(ServerStreamShim* shim, std::vector<std::shared_ptr<const std::string>> pieces);
// Ends the call with a grpc::StatusCode and message. Once, with no write in flight.
void shimFinish(ServerStreamShim* shim, int code, const std::string& message);

}  // namespace Proxy::ControlPlane
