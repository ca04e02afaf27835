#include "test/integration/tls_test_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace Proxy::Integration {
namespace {

using Clock = std::chrono::steady_clock;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

absl::Status writeFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  return out ? absl::OkStatus() : absl::InternalError(absl::StrCat("cannot write ", path));
}

std::string makeTempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/proxy_tls_XXXXXX");
  return ::mkdtemp(pattern.data()) == nullptr ? std::string() : pattern;
}

}  // namespace

absl::StatusOr<CommandResult> runCommand(const std::vector<std::string>& args,
                                         const std::string& stdin_data,
                                         std::chrono::milliseconds timeout) {
  const std::string dir = makeTempDir();
  if (dir.empty()) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  const std::string in_path = dir + "/stdin";
  const std::string out_path = dir + "/stdout";
  const std::string err_path = dir + "/stderr";
  if (absl::Status s = writeFile(in_path, stdin_data); !s.ok()) {
    return s;
  }
  std::vector<std::string> storage = args;
  std::vector<char*> argv;
  for (std::string& arg : storage) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  const int in_fd = ::open(in_path.c_str(), O_RDONLY | O_CLOEXEC);
  const int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (in_fd < 0 || out_fd < 0 || err_fd < 0) {
    return absl::InternalError(absl::StrCat("open: ", std::strerror(errno)));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(127);
    }
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(in_fd);
  ::close(out_fd);
  ::close(err_fd);
  if (pid < 0) {
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  // Waiting on the child itself: a short poll of waitpid with a deadline.
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  while (true) {
    const pid_t rc = ::waitpid(pid, &status, WNOHANG);
    if (rc == pid) {
      break;
    }
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return absl::DeadlineExceededError(absl::StrCat("'", absl::StrJoin(args, " "),
                                                      "' still running after ", timeout.count(),
                                                      " ms; stderr: ", slurp(err_path)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  CommandResult result;
  result.exit_code = WIFEXITED(status)     ? WEXITSTATUS(status)
                     : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                           : -1;
  result.stdout_text = slurp(out_path);
  result.stderr_text = slurp(err_path);
  ::unlink(in_path.c_str());
  ::unlink(out_path.c_str());
  ::unlink(err_path.c_str());
  ::rmdir(dir.c_str());
  return result;
}

absl::StatusOr<std::unique_ptr<BackgroundProcess>> BackgroundProcess::start(
    const std::vector<std::string>& args) {
  std::unique_ptr<BackgroundProcess> process(new BackgroundProcess());
  process->dir_ = makeTempDir();
  if (process->dir_.empty()) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  std::vector<std::string> storage = args;
  std::vector<char*> argv;
  for (std::string& arg : storage) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  const int in_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int out_fd =
      ::open((process->dir_ + "/stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err_fd =
      ::open((process->dir_ + "/stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (in_fd < 0 || out_fd < 0 || err_fd < 0) {
    return absl::InternalError(absl::StrCat("open: ", std::strerror(errno)));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(127);
    }
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(in_fd);
  ::close(out_fd);
  ::close(err_fd);
  if (pid < 0) {
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  process->pid_ = pid;
  return process;
}

BackgroundProcess::~BackgroundProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  ::unlink((dir_ + "/stdout").c_str());
  ::unlink((dir_ + "/stderr").c_str());
  ::rmdir(dir_.c_str());
}

absl::StatusOr<std::string> BackgroundProcess::waitForOutput(const std::string& text,
                                                             std::chrono::milliseconds timeout) {
  // Polling the file is the wait itself: a condition with a deadline.
  const auto deadline = Clock::now() + timeout;
  while (true) {
    std::string out = slurp(dir_ + "/stdout");
    if (out.find(text) != std::string::npos) {
      return out;
    }
    if (Clock::now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("no '", text, "' in the output after ",
                                                      timeout.count(), " ms: ", out,
                                                      slurp(dir_ + "/stderr")));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

absl::StatusOr<TestPki> TestPki::create() {
  TestPki pki;
  pki.dir_ = makeTempDir();
  if (pki.dir_.empty()) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  const std::string& d = pki.dir_;
  auto openssl = [](std::vector<std::string> args) -> absl::Status {
    args.insert(args.begin(), "openssl");
    auto result = runCommand(args, "", std::chrono::seconds(20));
    if (!result.ok()) {
      return result.status();
    }
    if (result->exit_code != 0) {
      return absl::InternalError(absl::StrCat("'", absl::StrJoin(args, " "), "' exited ",
                                              result->exit_code, ": ", result->stderr_text));
    }
    return absl::OkStatus();
  };
  // `openssl ca` (rather than `x509 -req`) because it can back-date a certificate.
  if (absl::Status s = writeFile(d + "/ca.cnf", absl::StrCat(R"([ ca ]
default_ca = CA_default
[ CA_default ]
database = )",
                                                             d, R"(/index.txt
new_certs_dir = )",
                                                             d, R"(
serial = )",
                                                             d, R"(/serial
default_md = sha256
policy = policy_any
unique_subject = no
[ policy_any ]
commonName = supplied
)"));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = writeFile(d + "/index.txt", ""); !s.ok()) {
    return s;
  }
  if (absl::Status s = writeFile(d + "/serial", "1000\n"); !s.ok()) {
    return s;
  }
  for (const std::string ca : {"ca", "untrusted_ca"}) {
    if (absl::Status s =
            openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", d + "/" + ca + ".key", "-out", d + "/" + ca + ".pem",
                     "-days", "30", "-subj", "/CN=" + ca});
        !s.ok()) {
      return s;
    }
  }
  struct Leaf {
    std::string name;
    std::string san;
    std::string ca;
    bool expired;
  };
  const std::vector<Leaf> leaves = {
      {"server", "DNS:localhost,DNS:server.example.com,IP:127.0.0.1", "ca", false},
      {"server2", "DNS:other.example.com,DNS:*.wild.example.com", "ca", false},
      {"client", "DNS:client.example.com,URI:spiffe://test/client", "ca", false},
      {"client_wrong_san", "DNS:intruder.example.com", "ca", false},
      {"client_expired", "DNS:client.example.com", "ca", true},
      {"client_untrusted", "DNS:client.example.com", "untrusted_ca", false},
  };
  for (const Leaf& leaf : leaves) {
    const std::string base = d + "/" + leaf.name;
    if (absl::Status s = writeFile(base + ".ext", "subjectAltName=" + leaf.san + "\n"); !s.ok()) {
      return s;
    }
    if (absl::Status s =
            openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", base + ".key", "-out", base + ".csr", "-subj", "/CN=" + leaf.name});
        !s.ok()) {
      return s;
    }
    std::vector<std::string> args = {"ca",
                                     "-config",
                                     d + "/ca.cnf",
                                     "-batch",
                                     "-notext",
                                     "-cert",
                                     d + "/" + leaf.ca + ".pem",
                                     "-keyfile",
                                     d + "/" + leaf.ca + ".key",
                                     "-in",
                                     base + ".csr",
                                     "-out",
                                     base + ".pem",
                                     "-extfile",
                                     base + ".ext"};
    if (leaf.expired) {
      args.insert(args.end(), {"-startdate", "20200101000000Z", "-enddate", "20200102000000Z"});
    } else {
      args.insert(args.end(), {"-days", "30"});
    }
    if (absl::Status s = openssl(args); !s.ok()) {
      return s;
    }
  }
  return pki;
}

}  // namespace Proxy::Integration
