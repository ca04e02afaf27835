#pragma once

// Three tiers of checks (ARCHITECTURE.md, convention 9):
//   ASSERT(cond)          debug-only invariant; compiled out in release builds.
//   RELEASE_ASSERT(c, m)  a state the process cannot survive; aborts with a message.
// Anything that comes from the network or from config is never asserted on: it is handled
// gracefully and counted.

#include <cstdio>
#include <cstdlib>

#define RELEASE_ASSERT(cond, msg)                                                           \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      ::fprintf(stderr, "%s:%d: assert failure: %s: %s\n", __FILE__, __LINE__, #cond, msg); \
      ::abort();                                                                            \
    }                                                                                       \
  } while (false)

#ifdef NDEBUG
#define ASSERT(cond)    \
  do {                  \
    (void)sizeof(cond); \
  } while (false)
#else
#define ASSERT(cond) RELEASE_ASSERT(cond, "")
#endif
