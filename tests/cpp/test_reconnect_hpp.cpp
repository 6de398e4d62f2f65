// The C++ wrapper's reconnect option and events: the server goes away and a new one binds the
// same path; the worker comes back, the blocked recv returns the new server's push, the late
// reply to the old push throws CLOSED; giving up ends recv with CLOSED; an exception from the
// event callback is rethrown by recv.
#include <rp/rp.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::string temp_socket_path(const char *name) {
    char tmpl[] = "/tmp/rpcpprcXXXXXX";
    const char *dir = mkdtemp(tmpl);
    if (dir == nullptr) throw std::runtime_error("mkdtemp");
    return std::string(dir) + "/" + name;
}

struct Events {
    std::mutex lock;
    std::vector<rp::WorkerEvent> seen;
    std::vector<rp_push_worker_event> kinds() {
        std::lock_guard<std::mutex> g(lock);
        std::vector<rp_push_worker_event> out;
        for (auto &e : seen) out.push_back(e.kind);
        return out;
    }
};

rp::WorkerOptions reconnecting(const std::string &ep, std::uint32_t attempts, std::shared_ptr<Events> events) {
    rp::WorkerOptions o(ep, "cpp-reconnect", "q");
    o.add_payload_protocol(0x7001).reconnect(10ms, 100ms, attempts, RP_RECONNECT_JITTER_EQUAL);
    o.on_event([events](const rp::WorkerEvent &e) {
        std::lock_guard<std::mutex> g(events->lock);
        events->seen.push_back(e);
    });
    return o;
}

}  // namespace

TEST(Reconnect, WorkerComesBackToANewServerOnTheSamePath) {
    std::string ep = temp_socket_path("rc.sock");
    auto events = std::make_shared<Events>();
    auto server = std::make_unique<rp::PushServer>(rp::PushServer::bind(rp::ServerOptions(ep)));
    auto opts = reconnecting(ep, 0, events);
    rp::Worker worker = rp::Worker::connect(opts);
    auto ticket = server->push(rp::PushRequest(0x7001, rp::Bytes(std::string_view("old"))));
    auto old = worker.recv(5000ms);
    ASSERT_TRUE(old.has_value());
    int fd = worker.fd();

    server.reset();  // the server goes away with the push in flight
    std::thread answering([&] {
        auto p = worker.recv(10000ms);  // waits through the outage
        ASSERT_TRUE(p.has_value());
        EXPECT_EQ(p->payload().str(), "new");
        worker.reply(p->correlation_id(), rp::Bytes(std::string_view("echo:new")));
    });
    std::this_thread::sleep_for(50ms);
    server = std::make_unique<rp::PushServer>(rp::PushServer::bind(rp::ServerOptions(ep)));
    // Back within its backoff (at most 100 ms apart), bounded here at 10 s.
    auto start = std::chrono::steady_clock::now();
    while (server->workers().empty() && std::chrono::steady_clock::now() - start < 10s) {
        std::this_thread::sleep_for(5ms);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    auto res = server->push_wait(rp::PushRequest(0x7001, rp::Bytes(std::string_view("new"))), 10000ms);
    answering.join();
    ASSERT_TRUE(res.has_value());
    EXPECT_EQ(res->payload().str(), "echo:new");
    try {
        worker.reply(old->correlation_id(), rp::Bytes(std::string_view("late")));
        ADD_FAILURE() << "the late reply must fail";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_CLOSED);
    }
    EXPECT_EQ(worker.fd(), fd);
    EXPECT_EQ(rp::stats(worker).reconnects, 1u);
    auto kinds = events->kinds();
    ASSERT_GE(kinds.size(), 4u);
    EXPECT_EQ(kinds[0], RP_PUSH_WORKER_EVENT_CONNECTED);
    EXPECT_EQ(kinds[1], RP_PUSH_WORKER_EVENT_LOST);
    EXPECT_EQ(kinds[2], RP_PUSH_WORKER_EVENT_RECONNECTING);
    EXPECT_EQ(kinds.back(), RP_PUSH_WORKER_EVENT_CONNECTED);
    worker.close();
}

TEST(Reconnect, GivingUpEndsRecvWithClosed) {
    std::string ep = temp_socket_path("giveup.sock");
    auto events = std::make_shared<Events>();
    auto server = std::make_unique<rp::PushServer>(rp::PushServer::bind(rp::ServerOptions(ep)));
    auto opts = reconnecting(ep, 2, events);
    rp::Worker worker = rp::Worker::connect(opts);
    server.reset();
    try {
        for (int i = 0; i < 10; i++) (void)worker.recv(1000ms);
        ADD_FAILURE() << "recv must end with CLOSED";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_CLOSED);
        EXPECT_NE(std::string(e.what()).find("gave up reconnecting"), std::string::npos) << e.what();
    }
    auto kinds = events->kinds();
    ASSERT_FALSE(kinds.empty());
    EXPECT_EQ(kinds.back(), RP_PUSH_WORKER_EVENT_GAVE_UP);
    std::lock_guard<std::mutex> g(events->lock);
    EXPECT_EQ(events->seen.back().attempt, 2u);
    EXPECT_NE(events->seen.back().status, RP_STATUS_OK);
}

TEST(Reconnect, AnExceptionFromTheEventCallbackIsRethrownByRecv) {
    std::string ep = temp_socket_path("throw.sock");
    auto server = rp::PushServer::bind(rp::ServerOptions(ep));
    rp::WorkerOptions o(ep, "cpp-reconnect", "q");
    o.reconnect(10ms, 100ms).on_event([](const rp::WorkerEvent &e) {
        if (e.kind == RP_PUSH_WORKER_EVENT_CONNECTED) throw std::runtime_error("from the callback");
    });
    rp::Worker worker = rp::Worker::connect(o);
    EXPECT_THROW((void)worker.recv(0ms), std::runtime_error);
    EXPECT_FALSE(worker.recv(0ms).has_value());  // delivered once
    EXPECT_THROW(rp::WorkerOptions(ep, "w").reconnect(0ms, 10ms), rp::Error);
}
