#pragma once

// ThreadSanitizer support, in one place for everything that talks to Debian's gRPC (the xDS
// client's transport, the control plane's server, their tests).
//
// Debian's libgrpc, libgpr and libabsl are not instrumented, so TSAN cannot see the
// synchronization gRPC orders its callbacks with. Our own code states that ordering with
// annotations instead of suppressing its races:
//   PROXY_TSAN_HAPPENS_BEFORE(addr)  before handing something to gRPC (__tsan_release)
//   PROXY_TSAN_HAPPENS_AFTER(addr)   when gRPC hands it back on another thread (__tsan_acquire)
// They compile to nothing outside TSAN builds. A file built without instrumentation
// (-fno-sanitize=thread, the gRPC shims) gets PROXY_TSAN_ANNOTATE=1 from CMake to keep them.
//
// PROXY_TSAN_GRPC_SUPPRESSIONS is the part of __tsan_default_suppressions() every executable
// that runs gRPC under TSAN needs: the uninstrumented libraries (each called_from_lib pattern
// must match exactly one loaded library) and gRPC's own header-only code. Each executable
// defines __tsan_default_suppressions() in its tsan_suppressions.cc, adding the uninstrumented
// files of its own (the shims, fake servers).

#if defined(__SANITIZE_THREAD__)
#define PROXY_TSAN_ENABLED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PROXY_TSAN_ENABLED 1
#endif
#endif

#if defined(PROXY_TSAN_ENABLED) || defined(PROXY_TSAN_ANNOTATE)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#define PROXY_TSAN_HAPPENS_BEFORE(addr) \
  __tsan_release(const_cast<void*>(static_cast<const void*>(addr)))
#define PROXY_TSAN_HAPPENS_AFTER(addr) \
  __tsan_acquire(const_cast<void*>(static_cast<const void*>(addr)))
#else
#define PROXY_TSAN_HAPPENS_BEFORE(addr) (void)(addr)
#define PROXY_TSAN_HAPPENS_AFTER(addr) (void)(addr)
#endif

// gRPC copies a call's status message between its threads through std::string's copy
// (_M_construct<char*>), a function it shares with everyone and whose uninstrumented callers
// TSAN cannot show: the one race suppressed by function name.
#define PROXY_TSAN_GRPC_SUPPRESSIONS                                                    \
  "called_from_lib:libgrpc.so.29\n"                                                     \
  "called_from_lib:libgrpc++.so\n"                                                      \
  "called_from_lib:libgpr.so.29\n"                                                      \
  "called_from_lib:libupb.so\n"                                                         \
  "called_from_lib:libabsl_graphcycles_internal.so\n"                                   \
  "called_from_lib:libabsl_synchronization.so\n"                                        \
  "called_from_lib:libabsl_status.so\n"                                                 \
  "called_from_lib:libabsl_cord.so\n"                                                   \
  "called_from_lib:libabsl_cord_internal.so\n"                                          \
  "called_from_lib:libabsl_strings.so\n"                                                \
  "called_from_lib:libabsl_time.so\n"                                                   \
  "called_from_lib:libabsl_time_zone.so\n"                                              \
  "race:grpc::internal::\n"                                                             \
  "race:std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> " \
  ">::_M_construct<char*>\n"
