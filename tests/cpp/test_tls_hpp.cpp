// TLS through the C++ wrapper: a push server on tls:// with mutual TLS (certificate and key as
// PEM text, client CA roots from a file), a worker with CA roots and client certificate, the
// client identity in WorkerInfo, and a refused certificate as an rp::Error. The certificates are
// made at run time by tests/tls_certs.sh (openssl); without openssl the test is skipped.
#include <rp/rp.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>

namespace {

struct CertDir {
    std::string path;
    bool made = false;
    CertDir() {
        char tmpl[] = "/tmp/rp-tls-hpp-XXXXXX";
        path = mkdtemp(tmpl);
        std::string cmd = std::string("sh '") + RP_VECTORS_DIR + "/../tls_certs.sh' '" + path + "' 2>/dev/null";
        made = std::system(cmd.c_str()) == 0;
    }
    ~CertDir() {
        std::string cmd = "rm -rf '" + path + "'";
        if (std::system(cmd.c_str()) != 0) ADD_FAILURE() << "could not remove " << path;
    }
    std::string file(const std::string &name) const { return path + "/" + name; }
    std::string read(const std::string &name) const {
        std::ifstream in(file(name), std::ios::binary);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }
};

}  // namespace

TEST(Tls, MutualTlsRoundTripAndIdentity) {
    CertDir certs;
    if (!certs.made) GTEST_SKIP() << "openssl not found";
    rp::ServerOptions so("tls://127.0.0.1:0");
    so.tls_cert_pem(certs.read("server.pem"), certs.read("server.key")).tls_client_ca_file(certs.file("ca.pem"));
    std::string seen_subject;
    std::vector<std::string> seen_sans;
    so.on_registration([&](const rp::WorkerInfo &w) {
        seen_subject = w.tls_subject;
        seen_sans = w.tls_sans;
        return w.tls_verified ? rp::Registration::accepted() : rp::Registration::rejected("no certificate");
    });
    auto server = rp::PushServer::bind(so);
    const std::string endpoint(server.endpoint());
    ASSERT_EQ(endpoint.rfind("tls://127.0.0.1:", 0), 0u) << endpoint;
    std::atomic<bool> stop{false};
    std::thread dispatcher([&] {
        while (!stop) server.dispatch(std::chrono::milliseconds(50));
    });

    rp::WorkerOptions wo(endpoint, "cpp-tls-worker", "q");
    wo.add_payload_protocol(0x7001).tls_ca_pem(certs.read("ca.pem")).tls_client_cert_files(certs.file("client.pem"),
                                                                                          certs.file("client.key"));
    auto worker = rp::Worker::connect(wo);
    auto workers = server.workers();
    ASSERT_EQ(workers.size(), 1u);
    EXPECT_TRUE(workers[0].tls_verified);
    EXPECT_FALSE(workers[0].has_peer);

    std::thread echo([&] {
        if (auto push = worker.recv(std::chrono::seconds(5))) worker.reply(push->correlation_id(), push->payload());
    });
    rp::PushRequest request(0x7001, rp::Bytes("ping"));
    auto result = server.push_wait(request.to_task_queue("q"), std::chrono::seconds(5));
    echo.join();
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(std::string(reinterpret_cast<const char *>(result->payload().data), result->payload().size), "ping");

    // Without a client certificate: PERMISSION_DENIED, saying why.
    rp::WorkerOptions bare(endpoint, "cpp-tls-bare", "q");
    bare.tls_ca_file(certs.file("ca.pem")).tls_server_name("localhost");
    try {
        rp::Worker::connect(bare);
        ADD_FAILURE() << "a worker without a client certificate got in";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_PERMISSION_DENIED);
        EXPECT_NE(std::string(e.what()).find("client certificate"), std::string::npos) << e.what();
    }
    stop = true;
    dispatcher.join();
    // What the registration callback saw (on the dispatching thread, joined above).
    EXPECT_EQ(seen_subject, "CN=c-worker,O=librp tests");
    EXPECT_EQ(seen_sans, std::vector<std::string>{"DNS:c-worker.example"});
}

TEST(Tls, UnknownCaIsPermissionDenied) {
    CertDir certs;
    if (!certs.made) GTEST_SKIP() << "openssl not found";
    rp::ServerOptions so("tls://127.0.0.1:0");
    so.tls_cert_files(certs.file("server.pem"), certs.file("server.key"));
    auto server = rp::PushServer::bind(so);
    rp::WorkerOptions wo(std::string(server.endpoint()), "cpp-tls-worker", "q");
    wo.tls_ca_pem(certs.read("other_ca.pem"));
    try {
        rp::Worker::connect(wo);
        ADD_FAILURE() << "a server from an unknown CA was trusted";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_PERMISSION_DENIED);
        EXPECT_NE(std::string(e.what()).find("unknown CA"), std::string::npos) << e.what();
    }
}

TEST(Tls, BrokerClientVerifiesATlsEndpoint) {
    CertDir certs;
    if (!certs.made) GTEST_SKIP() << "openssl not found";
    // Any TLS endpoint shows the verification: a push server's.
    rp::ServerOptions so("tls://127.0.0.1:0");
    so.tls_cert_files(certs.file("server.pem"), certs.file("server.key"));
    auto server = rp::PushServer::bind(so);
    rp::TlsClientOptions tls;
    tls.ca_pem(certs.read("other_ca.pem")).client_cert_files(certs.file("client.pem"), certs.file("client.key"));
    rp::BrokerOptions bo(std::string(server.endpoint()), "svc", "1.0.0");
    bo.tls(tls);
    try {
        rp::connect_broker(bo);
        ADD_FAILURE() << "a server from an unknown CA was trusted";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_PERMISSION_DENIED);
        EXPECT_NE(std::string(e.what()).find("unknown CA"), std::string::npos) << e.what();
    }
    EXPECT_THROW(rp::TlsClientOptions().ca_file("/nonexistent/ca.pem"), rp::Error);
}
