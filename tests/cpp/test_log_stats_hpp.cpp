// rp::set_log / rp::clear_log and rp::stats over real sockets.
#include <rp/rp.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::string temp_dir() {
    char tmpl[] = "/tmp/rplogXXXXXX";
    const char *dir = mkdtemp(tmpl);
    if (dir == nullptr) throw std::runtime_error("mkdtemp");
    return dir;
}

struct Seen {
    std::mutex lock;
    std::vector<std::tuple<rp::LogLevel, std::string, std::string>> events;
    bool has(rp::LogLevel level, const std::string &component, const std::string &needle) {
        std::lock_guard<std::mutex> g(lock);
        for (auto &[l, c, m] : events)
            if (l == level && c == component && m.find(needle) != std::string::npos) return true;
        return false;
    }
};

}  // namespace

TEST(LogStats, PushServerAndWorker) {
    auto seen = std::make_shared<Seen>();
    rp::set_log(rp::LogLevel::info, [seen](rp::LogLevel l, std::string_view c, std::string_view m) {
        std::lock_guard<std::mutex> g(seen->lock);
        seen->events.emplace_back(l, std::string(c), std::string(m));
        if (m.find("registered from") != std::string_view::npos) throw std::runtime_error("swallowed");
    });
    EXPECT_EQ(seen.use_count(), 2);

    const std::string ep = temp_dir() + "/push.sock";
    auto server = rp::PushServer::bind(rp::ServerOptions(ep));
    EXPECT_THROW((void)rp::Worker::connect(rp::WorkerOptions(ep, "w", "q").add_payload_protocol(0x7001).service("other")),
                 rp::Refused);
    auto worker = rp::Worker::connect(rp::WorkerOptions(ep, "w", "q").add_payload_protocol(0x7001));
    std::thread t([&] {
        auto push = worker.recv(5000ms);
        if (push) worker.reply(push->correlation_id(), std::string_view("pong"));
    });
    auto result = server.push_wait(rp::PushRequest(0x7001, std::string_view("ping")).to_task_queue("q"), 5000ms);
    t.join();
    ASSERT_TRUE(result.has_value());

    rp::PushServerStats s = rp::stats(server);
    EXPECT_EQ(s.size, sizeof s);
    EXPECT_EQ(s.refused_service_unknown, 1u);
    EXPECT_EQ(s.registrations_accepted, 1u);
    EXPECT_EQ(s.workers_registered, 1u);
    EXPECT_EQ(s.pushes_sent, 1u);
    EXPECT_EQ(s.pushes_answered, 1u);
    EXPECT_GT(s.bytes_in, 0u);
    rp::PushWorkerStats w = rp::stats(worker);
    EXPECT_EQ(w.pushes_received, 1u);
    EXPECT_EQ(w.replies_sent, 1u);

    EXPECT_TRUE(seen->has(rp::LogLevel::warn, "push-server", "refused (SERVICE_UNKNOWN): service is not registered"));
    EXPECT_TRUE(seen->has(rp::LogLevel::info, "push-server", "registered from"));
    EXPECT_TRUE(seen->has(rp::LogLevel::info, "push-worker", "registered with"));
    EXPECT_FALSE(seen->has(rp::LogLevel::debug, "push-server", "accepted from")) << "filtered by level";

    rp::clear_log();
    EXPECT_EQ(seen.use_count(), 1) << "the callable is destroyed when cleared";
    EXPECT_THROW(rp::set_log(static_cast<rp::LogLevel>(9), [](rp::LogLevel, std::string_view, std::string_view) {}),
                 rp::Error);
}

TEST(LogStats, BrokerStatsMatchMetrics) {
    const std::string ep = temp_dir() + "/broker.sock";
    auto broker = rp::BrokerServer::bind(rp::BrokerServerOptions(ep).add_service("echo", "/nonexistent", "1.0.0"));
    auto reply = rp::admin_request(ep, rp::AdminVerb::metrics, "", 2000ms);
    ASSERT_TRUE(reply.has_value());
    rp::BrokerServerStats b = rp::stats(broker);
    EXPECT_EQ(b.admin_requests, 1u);
    EXPECT_EQ(b.connections_accepted, 1u);
    EXPECT_NE(reply->body.find("librp_broker_admin_requests_total 1\n"), std::string::npos) << reply->body;
    EXPECT_NE(reply->body.find("librp_broker_connections_accepted_total 1\n"), std::string::npos) << reply->body;
}
