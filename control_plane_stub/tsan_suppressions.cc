// ThreadSanitizer suppressions for the control-plane-stub executable in TSAN builds (this file
// is empty otherwise). Debian's libgrpc, libgpr and libabsl are not instrumented, so TSAN sees
// their interceptor calls (epoll, memmove, free, ...) without the synchronization between
// them and reports races that are not there. The gRPC shim (grpc_server_shim.cc) is built
// uninstrumented for the same reason. The control plane's own logic is not suppressed: it
// states gRPC's ordering with explicit annotations (xds_server_impl.cc).

#if defined(__SANITIZE_THREAD__)
#define CONTROL_PLANE_STUB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CONTROL_PLANE_STUB_TSAN 1
#endif
#endif

#ifdef CONTROL_PLANE_STUB_TSAN
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
         "race:std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> "
         ">::_M_construct<char*>\n";
}
#endif
