#pragma once

// RETURN_IF_ERROR(expr): returns the absl::Status `expr` evaluates to when it is not OK (the
// config boundary's early return, ARCHITECTURE.md, convention 8). Works in functions returning
// absl::Status or absl::StatusOr<T>.

#include "absl/status/status.h"

#define RETURN_IF_ERROR(expr)      \
  do {                             \
    absl::Status status_ = (expr); \
    if (!status_.ok()) {           \
      return status_;              \
    }                              \
  } while (false)
