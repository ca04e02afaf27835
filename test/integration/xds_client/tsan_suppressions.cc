// ThreadSanitizer suppressions for this test (empty outside TSAN builds): the gRPC list every
// executable needs (proxy/common/tsan.h), and the files built uninstrumented, the gRPC reactor
// shim (xds_client/grpc_reactor_shim.cc) and the fake server, whose calls to memcpy/new/delete
// TSAN still sees: races reported from inside them are gRPC's side. Our own logic is not
// suppressed: it states gRPC's ordering with annotations (xds_client/grpc_transport_impl.cc).

#include "proxy/common/tsan.h"

#ifdef PROXY_TSAN_ENABLED
extern "C" const char* __tsan_default_suppressions() {
  return PROXY_TSAN_GRPC_SUPPRESSIONS
      "race:grpc_reactor_shim.cc\n"
      "race:fake_xds_server.cc\n"
      // gRPC joins its executor threads lazily (after the test's last check).
      "thread:grpc_core::Thread::Thread\n";
}
#endif
