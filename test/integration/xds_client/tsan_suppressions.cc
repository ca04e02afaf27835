// ThreadSanitizer suppressions for libraries this test uses but TSAN cannot see into: Debian's
// libgrpc, libgpr and libabsl are not instrumented, so TSAN sees their interceptor calls
// (epoll, memmove, ...) without the synchronization between them and reports races that are
// not there. Each called_from_lib pattern must name exactly one loaded library.
//
// The gRPC reactor shim (xds_client/grpc_reactor_shim.cc) and the fake server are built
// uninstrumented for the same reason, but their calls to memcpy/new/delete are still seen:
// races reported from inside gRPC's header-only code or those two files are gRPC's side.
// Our own logic is not suppressed; it states gRPC's ordering with explicit annotations
// (xds_client/grpc_transport_impl.cc). One exception is unavoidable: gRPC copies a call's
// status message between its threads through std::string's copy (_M_construct<char*>), a
// function it shares with everyone and whose uninstrumented callers TSAN cannot show.

#if defined(__SANITIZE_THREAD__)
#define XDS_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define XDS_TEST_TSAN 1
#endif
#endif

#ifdef XDS_TEST_TSAN
extern "C" const char* __tsan_default_suppressions() {
  return "called_from_lib:libgrpc.so.29\n"
         "called_from_lib:libgrpc++.so\n"
         "called_from_lib:libgpr.so.29\n"
         "called_from_lib:libupb.so\n"
         "called_from_lib:libabsl_graphcycles_internal.so\n"
         "called_from_lib:libabsl_synchronization.so\n"
         "called_from_lib:libabsl_status.so\n"
         "called_from_lib:libabsl_cord.so\n"
         "called_from_lib:libabsl_strings.so\n"
         "called_from_lib:libabsl_time.so\n"
         "called_from_lib:libabsl_time_zone.so\n"
         "race:grpc::internal::\n"
         "race:grpc_reactor_shim.cc\n"
         "race:fake_xds_server.cc\n"
         // gRPC joins its executor threads lazily (after the test's last check).
         "thread:grpc_core::Thread::Thread\n"
         "race:std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> "
         ">::_M_construct<char*>\n";
}
#endif
