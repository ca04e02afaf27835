// The certificate files of a secret delivered over xDS (SDS), watched as Envoy's SdsApi watches
// them: the SecretManager is told of each new version (watchSecretFiles, as server/xds_config.cc
// does), watches the files' directory with inotify on a real Dispatcher, and when a file is
// replaced (moved over) rebuilds the context; a replacement that does not load is a failed key
// rotation and the previous certificate keeps serving. Certificates made by the openssl CLI.
// (Secrets from a path_config_source file: test/integration/sds_file_integration_test.cc.)

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "proxy/event/dispatcher_impl.h"
#include "proxy/stats/stats.h"
#include "proxy/tls/context_provider.h"
#include "proxy/tls/secret_manager.h"
#include "test/integration/tls_test_util.h"

namespace Proxy::Tls {
namespace {

std::string commonName(const ContextConstSharedPtr& context) {
  SSL* ssl = context->newSsl();
  X509* cert = SSL_get_certificate(ssl);  // not owned
  char cn[256] = {};
  if (cert != nullptr) {
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
  }
  SSL_free(ssl);
  return cn;
}

void copyFile(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream(to, std::ios::binary | std::ios::trunc) << in.rdbuf();
}

// A copy of `from_file` written beside `path`, then moved over it.
void replaceFile(const std::string& path, const std::string& from_file) {
  copyFile(from_file, path + ".tmp");
  ASSERT_EQ(std::rename((path + ".tmp").c_str(), path.c_str()), 0);
}

TEST(SecretFilesTest, CertificateFilesOfAnSdsSecretRotateWhenReplaced) {
  auto pki = Integration::TestPki::create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  // The certificate "server" at files of their own.
  const std::string cert = pki->dir() + "/tls.crt";
  const std::string key = pki->dir() + "/tls.key";
  copyFile(pki->cert("server"), cert);
  copyFile(pki->key("server"), key);

  RealTimeSource time_source;
  Event::DispatcherImpl main("main", time_source);
  Stats::Store store;
  SecretManager secrets;
  secrets.enableFiles(main, store);
  secrets.setSdsSourceCheck([](const envoy::config::core::v3::ConfigSource&, const std::string&) {
    return absl::OkStatus();
  });
  // A listener's context naming secret "server_cert" over ADS.
  ContextImpl::DownstreamTlsContext proto;
  auto* ref = proto.mutable_common_tls_context()->add_tls_certificate_sds_secret_configs();
  ref->set_name("server_cert");
  ref->mutable_sds_config()->mutable_ads();
  auto provider = ContextProvider::createServer(proto, &secrets);
  ASSERT_TRUE(provider.ok()) << provider.status();

  // The management server's version names the files; it is applied and its files watched.
  Secret secret;
  secret.set_name("server_cert");
  secret.mutable_tls_certificate()->mutable_certificate_chain()->set_filename(cert);
  secret.mutable_tls_certificate()->mutable_private_key()->set_filename(key);
  std::shared_ptr<DynamicSecret> dynamic = secrets.findDynamicSecret("server_cert");
  ASSERT_NE(dynamic, nullptr);
  ASSERT_TRUE(dynamic->update(secret).ok());
  secrets.watchSecretFiles(dynamic);
  ContextConstSharedPtr before = (*provider)->current();
  ASSERT_NE(before, nullptr);
  EXPECT_EQ(commonName(before), "server");

  // Runs the main loop until `done` holds, or fails after 10 s.
  auto runUntil = [&main](const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return false;
      }
      main.run(Event::Dispatcher::RunType::NonBlock);
    }
    return true;
  };

  // A rotation: the key first (the pair does not match yet: a failed key rotation, "server"
  // serves on), then the certificate: the context is rebuilt with "server2".
  replaceFile(key, pki->key("server2"));
  ASSERT_TRUE(
      runUntil([&] { return store.counter("sds.server_cert.key_rotation_failed").value() == 1u; }));
  EXPECT_EQ((*provider)->current(), before);
  replaceFile(cert, pki->cert("server2"));
  ASSERT_TRUE(runUntil([&] { return (*provider)->current() != before; }));
  EXPECT_EQ(commonName((*provider)->current()), "server2");
  // The context a connection took before is unchanged (it keeps its certificate).
  EXPECT_EQ(commonName(before), "server");

  // Another file moved into the directory changes nothing.
  ContextConstSharedPtr rotated = (*provider)->current();
  replaceFile(pki->dir() + "/unrelated", pki->ca());
  main.run(Event::Dispatcher::RunType::NonBlock);
  EXPECT_EQ((*provider)->current(), rotated);
  EXPECT_EQ(store.counter("sds.server_cert.key_rotation_failed").value(), 1u);
}

}  // namespace
}  // namespace Proxy::Tls
