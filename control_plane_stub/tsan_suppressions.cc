// ThreadSanitizer suppressions for the control-plane-stub executable (empty outside TSAN
// builds): the gRPC list every executable needs (proxy/common/tsan.h), and the gRPC shim,
// built uninstrumented (grpc_server_shim.h). The control plane's own logic is not suppressed:
// it states gRPC's ordering with annotations (xds_server_impl.cc).

#include "proxy/common/tsan.h"

#ifdef PROXY_TSAN_ENABLED
extern "C" const char* __tsan_default_suppressions() {
  return PROXY_TSAN_GRPC_SUPPRESSIONS "race:grpc_server_shim.cc\n";
}
#endif
