// Diagnostics through the C++ wrapper: what() names the status once, and a
// worker that reached a broker is told so.
#include <rp/rp.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

using namespace std::chrono_literals;

namespace {

std::string temp_dir() {
    char tmpl[] = "/tmp/rpdiagcppXXXXXX";
    const char *dir = mkdtemp(tmpl);
    if (dir == nullptr) throw std::runtime_error("mkdtemp");
    return dir;
}

}  // namespace

TEST(Diagnostics, WhatNamesTheStatusOnce) {
    std::string dir = temp_dir();
    rp::PushServer server = rp::PushServer::bind(rp::ServerOptions(dir + "/push.sock"));
    rp::Worker worker = rp::Worker::connect(rp::WorkerOptions(std::string(server.endpoint()), "w"));
    worker.close();
    try {
        (void)worker.recv(1s);
        ADD_FAILURE() << "recv on a closed worker did not throw";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_CLOSED);
        EXPECT_EQ(std::string(e.what()), "closed: closed locally");
    }
    // A message without the word gets it in front; one with it keeps it once.
    EXPECT_EQ(std::string(rp::Error(RP_STATUS_IO, "connect: x").what()), "i/o error: connect: x");
    EXPECT_EQ(std::string(rp::Error(RP_STATUS_TIMEOUT, "timed out: y").what()), "timed out: y");
    EXPECT_EQ(std::string(rp::Error(RP_STATUS_TIMEOUT, "").what()), "timed out");
}

TEST(Diagnostics, WorkerToldItReachedABroker) {
    std::string dir = temp_dir();
    rp::BrokerServer broker = rp::BrokerServer::bind(
        rp::BrokerServerOptions(dir + "/broker.sock").add_service("echo", dir + "/backend.sock", "1.0.0"));
    try {
        (void)rp::Worker::connect(rp::WorkerOptions(dir + "/broker.sock", "w"));
        ADD_FAILURE() << "a worker registered with a broker";
    } catch (const rp::Refused &e) {
        EXPECT_EQ(e.code(), RP_ERROR_CODE_SERVICE_UNKNOWN);
        EXPECT_NE(std::string(e.what()).find("broker.sock is not a librp push server"), std::string::npos)
            << e.what();
    }
}
