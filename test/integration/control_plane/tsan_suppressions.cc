// ThreadSanitizer suppressions for what this test uses but TSAN cannot see into: Debian's
// libgrpc, libgpr and libabsl are not instrumented, so TSAN sees their interceptor calls
// (epoll, memcpy, free, ...) without the synchronization between them and reports races that
// are not there. The gRPC shims (control_plane_stub/grpc_server_shim.cc and the test client,
// xds_test_client.cc) are built uninstrumented for the same reason, but their calls to
// new/delete are still seen: races reported from inside them are gRPC's ordering. The control
// plane's own logic is not suppressed: it states gRPC's ordering with explicit annotations
// (control_plane_stub/xds_server_impl.cc).

#if defined(__SANITIZE_THREAD__)
#define CONTROL_PLANE_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CONTROL_PLANE_TEST_TSAN 1
#endif
#endif

#ifdef CONTROL_PLANE_TEST_TSAN
extern "C" const char* __tsan_default_suppressions() {
  return "called_from_lib:libgrpc.so.29\n"
         "called_from_lib:libgrpc++.so\n"
         "called_from_lib:libgpr.so.29\n"
         "called_from_lib:libupb.so\n"
         "called_from_lib:libabsl_graphcycles_internal.so\n"
         "called_from_lib:libabsl_synchronization.so\n"
         "called_from_lib:libabsl_status.so\n"
         "called_from_lib:libabsl_cord.so\n"
         "called_from_lib:libabsl_cord_internal.so\n"
         "called_from_lib:libabsl_strings.so\n"
         "called_from_lib:libabsl_time.so\n"
         "called_from_lib:libabsl_time_zone.so.20220623\n"
         "race:grpc::internal::\n"
         "race:grpc_server_shim.cc\n"
         "race:xds_test_client.cc\n"
         "race:std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> "
         ">::_M_construct<char*>\n";
}
#endif
