// A TLS context rotated by SDS while worker threads take it for new connections, with real
// threads and real certificates (made by the openssl CLI: TestPki). The main thread (the test
// thread) hands 60 versions of secret `server_cert`, alternating between two certificates, to
// its DynamicSecret, which rebuilds the ContextProvider's context and switches it; four reader
// threads meanwhile call current() and start an SSL from each context they get, as a worker
// does per accepted connection, holding the previous one a while (a connection outliving the
// rotation). Run under ThreadSanitizer (label `threading`): the switch is a reader/writer lock
// and the old contexts die on whichever thread drops them last (their /certs registration with
// them). The assertions: once ready, a reader never gets a null context; every context it gets
// carries one of the two certificates; and after the last version, every reader sees it.

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proxy/stats/stats.h"
#include "proxy/tls/context_provider.h"
#include "proxy/tls/secret_manager.h"
#include "test/integration/tls_test_util.h"

namespace Proxy::Tls {
namespace {

constexpr int kReaders = 4;
constexpr int kVersions = 60;

std::string commonName(SSL* ssl) {
  X509* cert = SSL_get_certificate(ssl);  // not owned
  if (cert == nullptr) {
    return "";
  }
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
  return cn;
}

Secret certificateSecret(const Integration::TestPki& pki, const std::string& name) {
  Secret secret;
  secret.set_name("server_cert");
  secret.mutable_tls_certificate()->mutable_certificate_chain()->set_filename(pki.cert(name));
  secret.mutable_tls_certificate()->mutable_private_key()->set_filename(pki.key(name));
  return secret;
}

TEST(ContextProviderThreadTest, RotationWhileWorkersTakeContexts) {
  auto pki = Integration::TestPki::create();
  ASSERT_TRUE(pki.ok()) << pki.status();

  SecretManager secrets;
  secrets.setSdsSourceCheck([](const envoy::config::core::v3::ConfigSource&, const std::string&) {
    return absl::OkStatus();
  });
  ContextImpl::DownstreamTlsContext proto;
  auto* ref = proto.mutable_common_tls_context()->add_tls_certificate_sds_secret_configs();
  ref->set_name("server_cert");
  ref->mutable_sds_config()->mutable_ads();
  auto provider = ContextProvider::createServer(proto, &secrets);
  ASSERT_TRUE(provider.ok()) << provider.status();
  Stats::Store store;
  (*provider)->initStats(Stats::Scope(store, "listener.test."));
  // Not ready, no context: a connection now would be closed.
  EXPECT_FALSE((*provider)->ready());
  EXPECT_EQ((*provider)->current(), nullptr);
  std::shared_ptr<DynamicSecret> dynamic = secrets.findDynamicSecret("server_cert");
  ASSERT_NE(dynamic, nullptr);
  ASSERT_TRUE(dynamic->update(certificateSecret(*pki, "server")).ok());
  EXPECT_TRUE((*provider)->ready());

  std::atomic<bool> stop{false};
  std::atomic<int> nulls{0};
  std::atomic<int> wrong{0};
  std::atomic<int> taken{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaders; i++) {
    readers.emplace_back([&, p = *provider] {
      ContextConstSharedPtr held;  // a connection that outlives a rotation
      while (!stop.load()) {
        ContextConstSharedPtr context = p->current();
        if (context == nullptr) {
          nulls++;
          continue;
        }
        SSL* ssl = context->newSsl();
        const std::string cn = commonName(ssl);
        SSL_free(ssl);
        if (cn != "server" && cn != "server2") {
          wrong++;
        }
        if (++taken % 7 == 0) {
          held = std::move(context);
        }
      }
    });
  }
  for (int v = 0; v < kVersions; v++) {
    ASSERT_TRUE(dynamic->update(certificateSecret(*pki, v % 2 == 0 ? "server2" : "server")).ok());
  }
  // The last version (index kVersions - 1: odd) is "server".
  const int before = taken.load();
  while (taken.load() < before + 100) {
    std::this_thread::yield();
  }
  stop = true;
  for (std::thread& t : readers) {
    t.join();
  }
  EXPECT_EQ(nulls.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  SSL* ssl = (*provider)->current()->newSsl();
  EXPECT_EQ(commonName(ssl), "server");
  SSL_free(ssl);
  // Envoy's counter: every switch, the first arrival included.
  EXPECT_EQ(
      store.counter("listener.test.server_ssl_socket_factory.ssl_context_update_by_sds").value(),
      kVersions + 1);
  // A bad version changes nothing.
  Secret bad = certificateSecret(*pki, "server2");
  bad.mutable_tls_certificate()->mutable_certificate_chain()->set_inline_string("not a pem");
  absl::Status status = dynamic->update(bad);
  EXPECT_EQ(status.message(), "tls_certificate.certificate_chain: no PEM certificate found");
  ssl = (*provider)->current()->newSsl();
  EXPECT_EQ(commonName(ssl), "server");
  SSL_free(ssl);
}

}  // namespace
}  // namespace Proxy::Tls
