// ThreadSanitizer suppressions for this test (empty outside TSAN builds): the gRPC list every
// executable needs (proxy/common/tsan.h), and the gRPC shims built uninstrumented
// (control_plane_stub/grpc_server_shim.cc and the test client, xds_test_client.cc), whose calls
// to new/delete TSAN still sees: races reported from inside them are gRPC's ordering. The
// control plane's own logic is not suppressed: it states gRPC's ordering with annotations
// (control_plane_stub/xds_server_impl.cc).

#include "proxy/common/tsan.h"

#ifdef PROXY_TSAN_ENABLED
extern "C" const char* __tsan_default_suppressions() {
  return PROXY_TSAN_GRPC_SUPPRESSIONS
      "race:grpc_server_shim.cc\n"
      "race:xds_test_client.cc\n";
}
#endif
