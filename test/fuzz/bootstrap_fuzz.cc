// Fuzzes bootstrap loading as `proxy --config-yaml TEXT` does it: YAML (or JSON) text ->
// Bootstrap proto -> every check of --mode validate. Whatever the text, the loader returns a
// status (never crashes, leaks or hangs), and an error is one line.

#include <cstdint>
#include <string>

#include "proxy/config/bootstrap.h"
#include "proxy/config/options.h"
#include "test/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Proxy::Config::Options options;
  options.config_yaml.assign(reinterpret_cast<const char*>(data), size);
  if (options.config_yaml.empty()) {
    return 0;  // "no config" is a usage error of the command line, not the loader's
  }
  options.mode = Proxy::Config::Mode::Validate;
  absl::StatusOr<Proxy::Config::Bootstrap> bootstrap = Proxy::Config::loadBootstrap(options);
  if (!bootstrap.ok()) {
    FUZZ_CHECK(!bootstrap.status().message().empty());
  }
  return 0;
}
