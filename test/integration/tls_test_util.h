#pragma once

// TLS test material made at test time with the `openssl` CLI, and a runner for real TLS peers
// (openssl s_client, curl). TestPki::create() writes into a fresh temp dir: a test CA, a second
// CA nobody trusts, and leaf certificates signed by them (EC P-256, so generation takes
// milliseconds):
//   server        SAN DNS:localhost, DNS:server.example.com, IP:127.0.0.1
//   server2       SAN DNS:other.example.com, DNS:*.wild.example.com
//   client        SAN DNS:client.example.com, URI:spiffe://test/client
//   client_wrong_san   SAN DNS:intruder.example.com
//   client_expired     SAN DNS:client.example.com, valid in January 2020 only
//   client_untrusted   SAN DNS:client.example.com, signed by the untrusted CA
// Each NAME has NAME.pem (certificate) and NAME.key (private key); the CAs are ca.pem and
// untrusted_ca.pem.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace Proxy::Integration {

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed by one
  std::string stdout_text;
  std::string stderr_text;
};

// Run `argv` (argv[0] looked up in PATH) with `stdin_data` on its stdin, to completion or until
// `timeout` (then it is killed: SIGKILL to the one PID started, and an error returned).
absl::StatusOr<CommandResult> runCommand(const std::vector<std::string>& argv,
                                         const std::string& stdin_data,
                                         std::chrono::milliseconds timeout);

// A long-running peer (openssl s_server) started in the background: stdout and stderr go to
// files; the destructor SIGKILLs the one PID it started.
class BackgroundProcess {
 public:
  static absl::StatusOr<std::unique_ptr<BackgroundProcess>> start(
      const std::vector<std::string>& argv);
  ~BackgroundProcess();
  // Wait until the process's stdout contains `text`; its stdout then.
  absl::StatusOr<std::string> waitForOutput(const std::string& text,
                                            std::chrono::milliseconds timeout);

 private:
  BackgroundProcess() = default;
  int pid_ = -1;
  std::string dir_;
};

class TestPki {
 public:
  static absl::StatusOr<TestPki> create();

  const std::string& dir() const { return dir_; }
  std::string cert(const std::string& name) const { return dir_ + "/" + name + ".pem"; }
  std::string key(const std::string& name) const { return dir_ + "/" + name + ".key"; }
  std::string ca() const { return dir_ + "/ca.pem"; }

 private:
  std::string dir_;
};

}  // namespace Proxy::Integration
