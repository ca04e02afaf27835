#pragma once

// The real `proxy` binary as a child process of a test: writes the bootstrap to a private temp
// dir, spawns the binary with Envoy's flags, captures stdout/stderr to files, and talks to its
// admin endpoint. The destructor kills (SIGKILL) the one PID it spawned if it is still alive,
// and nothing else. Waiting on the process itself is the only place that polls with short
// waits; everything else waits on a condition with a deadline.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "test/integration/http_client.h"

namespace Proxy::Integration {

struct ProxyOptions {
  // The binary to run; empty: the proxy under test (binaryPath()). Tests against real peers set
  // Envoy's: it takes the same flags.
  std::string binary;
  std::string bootstrap_yaml;
  uint32_t concurrency = 1;
  uint32_t drain_time_s = 5;
  std::string log_level = "info";
  // Appended after the standard flags (e.g. {"--mode", "validate"}).
  std::vector<std::string> extra_args;
  // start() waits for GET /ready -> 200. A proxy configured over xDS only becomes ready once
  // the test's management server has answered, so such tests turn this off and wait for the
  // admin address only.
  bool wait_for_ready = true;
};

// What a process that ran to completion left behind.
struct ProcessResult {
  int exit_code = -1;  // the exit status, or 128 + signal number when killed by a signal
  std::string stdout_text;
  std::string stderr_text;
};

class ProxyProcess {
 public:
  explicit ProxyProcess(ProxyOptions options);
  ~ProxyProcess();
  ProxyProcess(const ProxyProcess&) = delete;
  ProxyProcess& operator=(const ProxyProcess&) = delete;

  // The binary under test: $PROXY_BINARY if set, else the build's PROXY_BINARY_PATH.
  static std::string binaryPath();
  // Run the binary with `args` (after argv[0]) to completion, e.g. `--mode validate`.
  static absl::StatusOr<ProcessResult> run(const std::vector<std::string>& args,
                                           std::chrono::milliseconds timeout = 30s);

  // Write the bootstrap and run the binary as "-c <bootstrap> <args...>" to completion, e.g.
  // with {"--mode", "validate"}. Independent of start().
  absl::StatusOr<ProcessResult> runToCompletion(const std::vector<std::string>& args,
                                                std::chrono::milliseconds timeout = 30s);

  // Write the bootstrap, spawn, wait for the admin address file and (unless
  // options.wait_for_ready is false) for GET /ready -> 200.
  testing::AssertionResult start(std::chrono::milliseconds timeout = 30s);

  pid_t pid() const { return pid_; }
  uint32_t adminPort() const { return admin_port_; }
  const std::string& tempDir() const { return temp_dir_; }
  const std::string& bootstrapPath() const { return bootstrap_path_; }
  // What the process wrote so far.
  std::string stdoutText() const;
  std::string stderrText() const;

  absl::StatusOr<HttpResponse> adminGet(std::string_view path);
  absl::StatusOr<HttpResponse> adminPost(std::string_view path);
  // The port a listener is actually bound to (listeners bind port 0 in tests), from
  // GET /listeners?format=json.
  absl::StatusOr<uint32_t> listenerPort(std::string_view listener_name);
  // Every counter and gauge from GET /stats ("name: value" lines).
  absl::StatusOr<std::map<std::string, int64_t>> stats();
  // One stat; NotFound when the proxy does not export it.
  absl::StatusOr<int64_t> counter(std::string_view name);
  // Poll /stats until `name` >= `value` or the deadline passes.
  testing::AssertionResult waitForCounterGe(std::string_view name, int64_t value,
                                            std::chrono::milliseconds timeout = 10s);

  bool sendSignal(int signal);
  // Wait for the process to exit; its exit code (128 + signal when killed by a signal).
  absl::StatusOr<int> waitForExit(std::chrono::milliseconds timeout);
  bool running() const { return pid_ > 0 && !exited_; }
  // Peak resident set size (VmHWM from /proc/<pid>/status), in KiB.
  absl::StatusOr<uint64_t> peakRssKb() const;

 private:
  absl::StatusOr<HttpResponse> adminRequest(std::string_view method, std::string_view path);

  ProxyOptions options_;
  std::string temp_dir_;
  std::string bootstrap_path_;
  std::string admin_address_path_;
  std::string stdout_path_;
  std::string stderr_path_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
  uint32_t admin_port_ = 0;
};

// fork + exec `binary` with `args`, stdin from /dev/null, stdout/stderr into the files; the
// child is SIGKILLed when the test process dies (for other peers a test runs, e.g. dnsmasq).
absl::StatusOr<pid_t> spawn(const std::string& binary, const std::vector<std::string>& args,
                            const std::string& stdout_path, const std::string& stderr_path);
// Wait for the child `pid` to exit: its exit code (128 + signal when killed by a signal).
absl::StatusOr<int> waitPid(pid_t pid, std::chrono::milliseconds timeout);

// Reads a whole file; "" when it does not exist.
std::string readFile(const std::string& path);

// Poll `condition` every few milliseconds until it holds or `timeout` passes. The polling is
// the wait itself (a condition with a deadline), never a fixed sleep standing in for one.
testing::AssertionResult waitUntil(const std::function<bool()>& condition,
                                   std::chrono::milliseconds timeout, std::string_view what);

}  // namespace Proxy::Integration
