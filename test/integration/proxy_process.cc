#include "test/integration/proxy_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "proxy/common/string_view.h"

namespace Proxy::Integration {
namespace {

using Clock = std::chrono::steady_clock;

struct Spawned {
  pid_t pid;
};

}  // namespace

// fork + exec with stdin from /dev/null and stdout/stderr into files. The child asks the
// kernel to SIGKILL it when the test process dies (PR_SET_PDEATHSIG), so a crashed or
// timed-out test never leaves a proxy behind. Only async-signal-safe calls after fork().
absl::StatusOr<pid_t> spawn(const std::string& binary, const std::vector<std::string>& args,
                            const std::string& stdout_path, const std::string& stderr_path) {
  std::vector<std::string> argv_storage;
  argv_storage.push_back(binary);
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);

  const int out_fd = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err_fd = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out_fd < 0 || err_fd < 0 || null_fd < 0) {
    return absl::InternalError(absl::StrCat("open output files: ", std::strerror(errno)));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(127);  // the test died between fork() and prctl()
    }
    ::dup2(null_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(out_fd);
  ::close(err_fd);
  ::close(null_fd);
  if (pid < 0) {
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(fork_errno)));
  }
  return pid;
}

static int decodeWaitStatus(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return -1;
}

// Wait for `pid` to exit. A pidfd makes this a real blocking wait with a deadline; kernels
// without pidfd_open fall back to polling waitpid() every 10 ms.
absl::StatusOr<int> waitPid(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
#ifdef SYS_pidfd_open
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  const int pidfd = -1;
#endif
  for (;;) {
    int status = 0;
    const pid_t rc = ::waitpid(pid, &status, WNOHANG);
    if (rc == pid) {
      if (pidfd >= 0) {
        ::close(pidfd);
      }
      return decodeWaitStatus(status);
    }
    if (rc < 0 && errno != EINTR) {
      if (pidfd >= 0) {
        ::close(pidfd);
      }
      return absl::InternalError(absl::StrCat("waitpid: ", std::strerror(errno)));
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      if (pidfd >= 0) {
        ::close(pidfd);
      }
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid, " still running after ", timeout.count(), " ms"));
    }
    if (pidfd >= 0) {
      pollfd pfd{pidfd, POLLIN, 0};
      ::poll(&pfd, 1, static_cast<int>(left.count()));
    } else {
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(left, 10ms));
    }
  }
}

namespace {

std::string makeTempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/proxy_it_XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp(" << pattern << "): " << std::strerror(errno);
  }
  return pattern;
}

void writeFile(const std::string& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

// The tail of a log, to show in a failure message.
std::string tail(const std::string& text, size_t max = 4000) {
  return text.size() <= max ? text : "..." + text.substr(text.size() - max);
}

}  // namespace

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

testing::AssertionResult waitUntil(const std::function<bool()>& condition,
                                   std::chrono::milliseconds timeout, std::string_view what) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (condition()) {
      return testing::AssertionSuccess();
    }
    if (Clock::now() >= deadline) {
      return testing::AssertionFailure()
             << "timed out after " << timeout.count() << " ms waiting for " << what;
    }
    std::this_thread::sleep_for(5ms);
  }
}

ProxyProcess::ProxyProcess(ProxyOptions options) : options_(std::move(options)) {
  temp_dir_ = makeTempDir();
  bootstrap_path_ = temp_dir_ + "/bootstrap.yaml";
  admin_address_path_ = temp_dir_ + "/admin_address";
  stdout_path_ = temp_dir_ + "/stdout.log";
  stderr_path_ = temp_dir_ + "/stderr.log";
}

ProxyProcess::~ProxyProcess() {
  if (running()) {
    absl::StatusOr<int> early = waitForExit(0ms);
    if (early.ok()) {
      // Nobody asked it to stop: it crashed or quit on its own.
      ADD_FAILURE() << "the proxy exited unexpectedly with code " << *early;
    } else {
      // Stop it the way an operator would, so it leaves through its shutdown path (where the
      // sanitizers check for leaks) and a shutdown that hangs or fails is a test failure.
      const auto limit = std::chrono::seconds(options_.drain_time_s) + 10s;
      ::kill(pid_, SIGTERM);
      absl::StatusOr<int> code = waitForExit(limit);
      if (!code.ok()) {
        ADD_FAILURE() << "the proxy did not exit within " << limit.count()
                      << " s of SIGTERM; killing it";
        ::kill(pid_, SIGKILL);
        (void)waitForExit(10s);
      } else if (*code != 0) {
        ADD_FAILURE() << "the proxy exited with code " << *code << " after SIGTERM";
      }
    }
  }
  // A sanitizer report from the proxy fails the test that provoked it, wherever it happened.
  const std::string err = stderrText();
  for (std::string_view marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                  "runtime error:", "WARNING: ThreadSanitizer"}) {
    const size_t at = err.find(marker);
    if (at != std::string::npos) {
      ADD_FAILURE() << "the proxy's stderr has a sanitizer report:\n" << err.substr(at, 8000);
      break;
    }
  }
  if (testing::Test::HasFailure()) {
    // The proxy's own account of what happened is the first thing to read on a failure.
    std::cerr << "---- proxy stderr (" << stderr_path_ << ") ----\n"
              << tail(stderrText()) << "\n---- end proxy stderr ----\n";
  }
  if (std::getenv("PROXY_IT_KEEP_TMP") == nullptr) {
    std::error_code ignored;
    std::filesystem::remove_all(temp_dir_, ignored);
  }
}

std::string ProxyProcess::binaryPath() {
  if (const char* env = std::getenv("PROXY_BINARY"); env != nullptr && *env != '\0') {
    return env;
  }
#ifdef PROXY_BINARY_PATH
  return PROXY_BINARY_PATH;
#else
  return "";
#endif
}

absl::StatusOr<ProcessResult> ProxyProcess::run(const std::vector<std::string>& args,
                                                std::chrono::milliseconds timeout) {
  const std::string binary = binaryPath();
  if (binary.empty()) {
    return absl::FailedPreconditionError("no proxy binary (PROXY_BINARY_PATH unset)");
  }
  const std::string dir = makeTempDir();
  const std::string out_path = dir + "/stdout.log";
  const std::string err_path = dir + "/stderr.log";
  absl::StatusOr<pid_t> pid = spawn(binary, args, out_path, err_path);
  if (!pid.ok()) {
    return pid.status();
  }
  absl::StatusOr<int> code = waitPid(*pid, timeout);
  if (!code.ok()) {
    ::kill(*pid, SIGKILL);
    (void)waitPid(*pid, 10s);
    return code.status();
  }
  ProcessResult result{*code, readFile(out_path), readFile(err_path)};
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return result;
}

absl::StatusOr<ProcessResult> ProxyProcess::runToCompletion(const std::vector<std::string>& args,
                                                            std::chrono::milliseconds timeout) {
  writeFile(bootstrap_path_, options_.bootstrap_yaml);
  std::vector<std::string> all = {"-c", bootstrap_path_};
  all.insert(all.end(), args.begin(), args.end());
  return run(all, timeout);
}

testing::AssertionResult ProxyProcess::start(std::chrono::milliseconds timeout) {
  const std::string binary = options_.binary.empty() ? binaryPath() : options_.binary;
  if (binary.empty()) {
    return testing::AssertionFailure() << "no proxy binary: PROXY_BINARY_PATH was not defined "
                                          "at build time and $PROXY_BINARY is unset";
  }
  writeFile(bootstrap_path_, options_.bootstrap_yaml);
  std::vector<std::string> args = {"-c", bootstrap_path_, "--concurrency",
                                   std::to_string(options_.concurrency), "--drain-time-s",
                                   std::to_string(options_.drain_time_s), "--log-level",
                                   options_.log_level, "--admin-address-path", admin_address_path_,
                                   // Envoy, when a test runs it, needs this to run beside
                                   // another Envoy (ctest -j2): without it both bind the hot
                                   // restart socket of base id 0. Ours accepts it.
                                   "--disable-hot-restart"};
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  absl::StatusOr<pid_t> pid = spawn(binary, args, stdout_path_, stderr_path_);
  if (!pid.ok()) {
    return testing::AssertionFailure() << pid.status();
  }
  pid_ = *pid;

  const auto deadline = Clock::now() + timeout;
  auto left = [&] {
    return std::max<std::chrono::milliseconds>(
        1ms, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  };
  // Step 1: the admin address file appears once the admin listener is bound ("ip:port").
  testing::AssertionResult admin_known = waitUntil(
      [&] {
        if (!running() || waitForExit(0ms).ok()) {
          return true;  // exited: stop waiting and report below
        }
        std::string address(absl::StripAsciiWhitespace(readFile(admin_address_path_)));
        const size_t colon = address.rfind(':');
        uint32_t port = 0;
        if (colon != std::string::npos && absl::SimpleAtoi(address.substr(colon + 1), &port) &&
            port != 0) {
          admin_port_ = port;
          return true;
        }
        return false;
      },
      left(), "the admin address file " + admin_address_path_);
  if (exited_) {
    return testing::AssertionFailure()
           << "proxy exited with code " << exit_code_ << " during startup; stderr:\n"
           << tail(stderrText());
  }
  if (!admin_known) {
    return admin_known << "; stderr:\n" << tail(stderrText());
  }
  if (!options_.wait_for_ready) {
    return testing::AssertionSuccess();
  }
  // Step 2: /ready says LIVE once the workers serve the listeners.
  testing::AssertionResult ready = waitUntil(
      [&] {
        absl::StatusOr<HttpResponse> response = adminGet("/ready");
        return !running() || (response.ok() && response->status == 200);
      },
      left(), "GET /ready -> 200");
  if (!running()) {
    return testing::AssertionFailure()
           << "proxy exited with code " << exit_code_ << " during startup; stderr:\n"
           << tail(stderrText());
  }
  if (!ready) {
    return ready << "; stderr:\n" << tail(stderrText());
  }
  return testing::AssertionSuccess();
}

std::string ProxyProcess::stdoutText() const {
  return readFile(stdout_path_);
}
std::string ProxyProcess::stderrText() const {
  return readFile(stderr_path_);
}

absl::StatusOr<HttpResponse> ProxyProcess::adminRequest(std::string_view method,
                                                        std::string_view path) {
  if (admin_port_ == 0) {
    return absl::FailedPreconditionError("the admin port is not known yet");
  }
  HttpRequest request;
  request.method = std::string(method);
  request.path = std::string(path);
  request.host = absl::StrCat("127.0.0.1:", admin_port_);
  return httpRequest(admin_port_, request, 5s);
}

absl::StatusOr<HttpResponse> ProxyProcess::adminGet(std::string_view path) {
  return adminRequest("GET", path);
}

absl::StatusOr<HttpResponse> ProxyProcess::adminPost(std::string_view path) {
  return adminRequest("POST", path);
}

absl::StatusOr<uint32_t> ProxyProcess::listenerPort(std::string_view listener_name) {
  absl::StatusOr<HttpResponse> response = adminGet("/listeners?format=json");
  if (!response.ok()) {
    return response.status();
  }
  if (response->status != 200) {
    return absl::InternalError(
        absl::StrCat("GET /listeners?format=json: ", response->status, " ", response->body));
  }
  // {"listener_statuses":[{"name":..,"local_address":{"socket_address":{..,"port_value":N}}}]}
  google::protobuf::Struct root;
  auto parsed = google::protobuf::util::JsonStringToMessage(response->body, &root);
  if (!parsed.ok()) {
    return absl::InternalError(absl::StrCat("/listeners is not JSON: ", response->body));
  }
  const auto& fields = root.fields();
  auto statuses = fields.find("listener_statuses");
  if (statuses == fields.end()) {
    return absl::InternalError(
        absl::StrCat("/listeners has no listener_statuses: ", response->body));
  }
  for (const auto& entry : statuses->second.list_value().values()) {
    const auto& listener = entry.struct_value().fields();
    auto name = listener.find("name");
    if (name == listener.end() || name->second.string_value() != listener_name) {
      continue;
    }
    auto local = listener.find("local_address");
    if (local == listener.end()) {
      break;
    }
    const auto& socket = local->second.struct_value().fields().find("socket_address");
    if (socket == local->second.struct_value().fields().end()) {
      break;
    }
    const auto& address = socket->second.struct_value().fields();
    auto port = address.find("port_value");
    if (port == address.end()) {
      break;
    }
    return static_cast<uint32_t>(port->second.number_value());
  }
  return absl::NotFoundError(
      absl::StrCat("listener '", asAbsl(listener_name), "' not in /listeners: ", response->body));
}

absl::StatusOr<std::map<std::string, int64_t>> ProxyProcess::stats() {
  absl::StatusOr<HttpResponse> response = adminGet("/stats");
  if (!response.ok()) {
    return response.status();
  }
  if (response->status != 200) {
    return absl::InternalError(absl::StrCat("GET /stats: ", response->status));
  }
  std::map<std::string, int64_t> out;
  for (absl::string_view line : absl::StrSplit(response->body, '\n', absl::SkipEmpty())) {
    const size_t colon = line.rfind(": ");
    int64_t value = 0;
    // Histograms and text readouts have non-numeric values; they are not counters.
    if (colon != absl::string_view::npos && absl::SimpleAtoi(line.substr(colon + 2), &value)) {
      out[std::string(line.substr(0, colon))] = value;
    }
  }
  return out;
}

absl::StatusOr<int64_t> ProxyProcess::counter(std::string_view name) {
  absl::StatusOr<std::map<std::string, int64_t>> all = stats();
  if (!all.ok()) {
    return all.status();
  }
  auto it = all->find(std::string(name));
  if (it == all->end()) {
    return absl::NotFoundError(absl::StrCat("no stat named '", asAbsl(name), "'"));
  }
  return it->second;
}

testing::AssertionResult ProxyProcess::waitForCounterGe(std::string_view name, int64_t value,
                                                        std::chrono::milliseconds timeout) {
  int64_t last = -1;
  testing::AssertionResult result = waitUntil(
      [&] {
        absl::StatusOr<int64_t> current = counter(name);
        last = current.ok() ? *current : -1;
        return last >= value;
      },
      timeout, absl::StrCat(asAbsl(name), " >= ", value));
  if (!result) {
    result << " (last value " << last << ")";
  }
  return result;
}

bool ProxyProcess::sendSignal(int signal) {
  return running() && ::kill(pid_, signal) == 0;
}

absl::StatusOr<int> ProxyProcess::waitForExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) {
    return absl::FailedPreconditionError("the proxy was never started");
  }
  if (exited_) {
    return exit_code_;
  }
  absl::StatusOr<int> code = waitPid(pid_, timeout);
  if (code.ok()) {
    exited_ = true;
    exit_code_ = *code;
  }
  return code;
}

absl::StatusOr<uint64_t> ProxyProcess::peakRssKb() const {
  const std::string status = readFile(absl::StrCat("/proc/", pid_, "/status"));
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (absl::ConsumePrefix(&line, "VmHWM:")) {
      line = absl::StripAsciiWhitespace(line);
      absl::ConsumeSuffix(&line, " kB");
      uint64_t kb = 0;
      if (absl::SimpleAtoi(line, &kb)) {
        return kb;
      }
    }
  }
  return absl::NotFoundError(absl::StrCat("no VmHWM in /proc/", pid_, "/status"));
}

}  // namespace Proxy::Integration
