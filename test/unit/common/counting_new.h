#pragma once

// A test binary that links counting_new.cc has every operator new counted, so a test can say
// "this allocated nothing once warm": read operatorNewCalls() before and after.

#include <cstdint>

namespace Proxy::Test {

uint64_t operatorNewCalls();

}  // namespace Proxy::Test
