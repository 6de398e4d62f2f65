// The C++ wrapper on Windows: a push server and a worker over a named pipe (either spelling of
// its name) and over TCP, and the exceptions of a refused Hello and of nothing to connect to.
// Built with MinGW and run under Wine by scripts/windows.sh.
#include <rp/rp.hpp>

#include <gtest/gtest.h>

#include <windows.h>

#include <cctype>
#include <string>
#include <thread>

using namespace std::chrono_literals;

namespace {

// A pipe name of this process's own (bare: librp also takes it as \\.\pipe\NAME).
std::string pipe_name(const char *what) {
    return "rp-cpp-" + std::to_string(GetCurrentProcessId()) + "-" + what;
}

std::string upper(std::string s) {
    for (auto &ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return s;
}

// Pushes `text` through `server`; `worker` answers it in upper case on a thread of its own.
void round_trip(rp::PushServer &server, rp::Worker &worker, const std::string &text) {
    std::thread answer([&worker] {
        auto p = worker.recv(5000ms);
        ASSERT_TRUE(p.has_value());
        worker.reply(p->correlation_id(), rp::Bytes(std::string_view(upper(std::string(p->payload().str())))));
    });
    auto res = server.push_wait(rp::PushRequest(0x7001, rp::Bytes(std::string_view(text))), 5000ms);
    answer.join();
    ASSERT_TRUE(res.has_value());
    EXPECT_FALSE(res->is_failure());
    EXPECT_EQ(res->payload().str(), upper(text));
}

}  // namespace

TEST(WindowsPush, NamedPipeEitherSpelling) {
    const std::string name = pipe_name("push");
    auto server = rp::PushServer::bind(rp::ServerOptions("\\\\.\\pipe\\" + name));
    rp::Worker bare = rp::Worker::connect(rp::WorkerOptions(name, "bare").add_payload_protocol(0x7001));
    round_trip(server, bare, "over a pipe named bare");
    bare.close();

    const std::string other = pipe_name("push-2");
    auto server2 = rp::PushServer::bind(rp::ServerOptions(other));
    rp::Worker full = rp::Worker::connect(rp::WorkerOptions("\\\\.\\pipe\\" + other, "full").add_payload_protocol(0x7001));
    round_trip(server2, full, "over a pipe named in full");
}

TEST(WindowsPush, Tcp) {
    auto server = rp::PushServer::bind(rp::ServerOptions("tcp://127.0.0.1:0"));
    const std::string ep(server.endpoint());
    ASSERT_EQ(ep.rfind("tcp://127.0.0.1:", 0), 0u) << ep;
    EXPECT_NE(ep, "tcp://127.0.0.1:0");
    rp::Worker w = rp::Worker::connect(rp::WorkerOptions(ep, "tcp").add_payload_protocol(0x7001));
    round_trip(server, w, "over tcp");
}

TEST(WindowsPush, RefusedHelloAndNothingThere) {
    const std::string name = pipe_name("svc");
    auto server = rp::PushServer::bind(rp::ServerOptions(name).service("svc-a"));
    try {
        (void)rp::Worker::connect(rp::WorkerOptions(name, "w").add_payload_protocol(0x7001).service("svc-b"));
        FAIL() << "wrong service accepted";
    } catch (const rp::Refused &e) {
        EXPECT_EQ(e.status(), RP_STATUS_REFUSED);
        EXPECT_EQ(e.code(), RP_ERROR_CODE_SERVICE_UNKNOWN);
    }
    try {
        (void)rp::Worker::connect(rp::WorkerOptions(pipe_name("none"), "w"));
        FAIL() << "connected to nothing";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_IO);
    }
    EXPECT_THROW((void)rp::PushServer::bind(rp::ServerOptions("@abstract")), rp::Error);
}
