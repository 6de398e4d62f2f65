// The C++ wrapper's worker on a liminal endpoint (liminal+tcp://host:port), against a small
// fake liminal server on 127.0.0.1: the Connect and WorkerRegister bytes, one push answered by
// a handler and the PushReply bytes it sends; the options a liminal endpoint refuses.
#include <rp/rp.hpp>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

using ByteVec = std::vector<std::uint8_t>;

// Frame builders for the expected and scripted bytes.
void put_u32(ByteVec &b, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}
void put_str(ByteVec &b, const std::string &s) {
    put_u32(b, static_cast<std::uint32_t>(s.size()));
    b.insert(b.end(), s.begin(), s.end());
}
ByteVec frame(std::uint8_t kind, std::uint8_t flags, std::uint32_t stream, const ByteVec &payload) {
    ByteVec b{kind, flags};
    put_u32(b, stream);
    put_u32(b, static_cast<std::uint32_t>(payload.size()));
    b.insert(b.end(), payload.begin(), payload.end());
    return b;
}

// A one-connection fake liminal server; every wait is bounded (5 s); failures are collected and
// checked by the test after join().
class FakeLiminal {
public:
    FakeLiminal() {
        fd_ = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || listen(fd_, 1) != 0 ||
            getsockname(fd_, reinterpret_cast<sockaddr *>(&a), &len) != 0)
            throw std::runtime_error("fake liminal server: cannot listen");
        port_ = ntohs(a.sin_port);
    }
    ~FakeLiminal() {
        if (thread_.joinable()) thread_.join();
        close(fd_);
    }
    std::string endpoint() const { return "liminal+tcp://127.0.0.1:" + std::to_string(port_); }

    // Expects `connect` then `reg` from the worker (acking each), pushes `push`, and records the
    // next frame the worker sends in reply().
    void run(ByteVec connect, ByteVec reg, ByteVec push) {
        thread_ = std::thread([this, connect, reg, push] {
            int c = wait(fd_) ? accept(fd_, nullptr, nullptr) : -1;
            if (c < 0) return fail("no connection");
            if (expect(c, connect, "Connect") && send_all(c, frame(0x02, 0, 0, {0, 1, 0, 2, 0, 0, 0, 0})) &&
                expect(c, reg, "WorkerRegister") && send_all(c, frame(0x18, 0, 0, {0})) && send_all(c, push))
                reply_ = read_frame(c);
            close(c);
        });
    }
    void join() { thread_.join(); }
    const ByteVec &reply() const { return reply_; }
    const std::vector<std::string> &failures() const { return failures_; }

private:
    static bool wait(int fd) {
        pollfd p{fd, POLLIN, 0};
        return poll(&p, 1, 5000) == 1;
    }
    bool read_exact(int c, std::uint8_t *out, std::size_t n) {
        for (std::size_t have = 0; have < n;) {
            if (!wait(c)) return false;
            ssize_t got = recv(c, out + have, n - have, 0);
            if (got <= 0) return false;
            have += static_cast<std::size_t>(got);
        }
        return true;
    }
    ByteVec read_frame(int c) {
        ByteVec f(10);
        if (!read_exact(c, f.data(), 10)) return fail("no frame header"), ByteVec{};
        std::uint32_t len = (std::uint32_t{f[6]} << 24) | (std::uint32_t{f[7]} << 16) | (std::uint32_t{f[8]} << 8) | f[9];
        if (len > 65536) return fail("frame too long"), ByteVec{};
        f.resize(10 + len);
        if (!read_exact(c, f.data() + 10, len)) return fail("no frame payload"), ByteVec{};
        return f;
    }
    bool expect(int c, const ByteVec &want, const char *what) {
        ByteVec got = read_frame(c);
        if (got != want) fail(std::string("the worker's ") + what + " differs from the expected bytes");
        return got == want;
    }
    bool send_all(int c, const ByteVec &b) {
        if (send(c, b.data(), b.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(b.size())) return true;
        fail("send failed");
        return false;
    }
    void fail(const std::string &why) { failures_.push_back(why); }

    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
    ByteVec reply_;
    std::vector<std::string> failures_;
};

}  // namespace

TEST(Liminal, ConnectRegisterPushAndReplyBytes) {
    FakeLiminal server;
    ByteVec connect;
    put_u32(connect, 0x00010000);  // offers 1.0 ..
    put_u32(connect, 0x00010003);  // .. 1.3
    put_str(connect, "");          // no token
    ByteVec reg;
    put_u32(reg, 1);
    put_str(reg, "default");                  // namespaces
    put_str(reg, "cpp.queue");                // task queue
    reg.push_back(0);                         // no node
    put_u32(reg, 1);
    put_str(reg, "cpp.echo");                 // activity types
    put_str(reg, "cpp-liminal-worker");       // identity
    put_u32(reg, 1);                          // one activity descriptor
    put_str(reg, "cpp.echo");
    put_str(reg, "{\"type\":\"string\"}");
    put_str(reg, "{\"type\":\"string\"}");
    ByteVec push;
    for (int i = 0; i < 7; i++) push.push_back(0);
    push.push_back(9);                        // correlation id 9
    put_str(push, "\"hi\"");
    server.run(frame(0x01, 0, 0, connect), frame(0x17, 0, 0, reg), frame(0x15, 0, 1, push));

    rp::WorkerOptions opts(server.endpoint(), "cpp-liminal-worker", "cpp.queue");
    opts.add_namespace("default")
        .add_activity_type("cpp.echo")
        .add_activity_descriptor("cpp.echo", "{\"type\":\"string\"}", "{\"type\":\"string\"}");
    rp::Worker w = rp::Worker::connect(opts);
    EXPECT_EQ(w.worker_id(), 0u);
    std::string seen;
    w.set_handler([&seen](const rp::Worker &worker, rp::PushView p) {
        seen.assign(reinterpret_cast<const char *>(p.payload().data), p.payload().size);
        EXPECT_EQ(p.payload_protocol(), 0u);
        EXPECT_EQ(p.deadline_unix_ms(), 0u);
        EXPECT_TRUE(p.traceparent().empty());
        static const char answer[] = "\"HI\"";
        worker.reply(p.correlation_id(), rp::Bytes{reinterpret_cast<const std::uint8_t *>(answer), 4});
    });
    EXPECT_EQ(w.dispatch(5000ms, 1), 1u);
    server.join();
    EXPECT_EQ(seen, "\"hi\"");
    ByteVec reply;
    for (int i = 0; i < 7; i++) reply.push_back(0);
    reply.push_back(9);
    put_str(reply, "\"HI\"");
    EXPECT_EQ(server.reply(), frame(0x16, 0, 1, reply));
    for (const auto &f : server.failures()) ADD_FAILURE() << "fake liminal server: " << f;
}

TEST(Liminal, OptionsALiminalEndpointRefuses) {
    rp::WorkerOptions opts("liminal+tcp://127.0.0.1:1", "w", "q");
    auto status_of = [](auto &&call) {
        try {
            call();
        } catch (const rp::Error &e) {
            return e.status();
        }
        return RP_STATUS_OK;
    };
    EXPECT_EQ(status_of([&] { opts.service("other"); }), RP_STATUS_INVALID_ARGUMENT);
    EXPECT_EQ(status_of([&] { opts.add_payload_protocol(0x7001); }), RP_STATUS_INVALID_ARGUMENT);
    EXPECT_EQ(status_of([&] { opts.add_activity_descriptor("a", "{}", "{}"); }), RP_STATUS_OK);
    rp::WorkerOptions librp("tcp://127.0.0.1:1", "w", "q");
    EXPECT_EQ(status_of([&] { librp.add_activity_descriptor("a", "{}", "{}"); }), RP_STATUS_INVALID_ARGUMENT);
    EXPECT_EQ(status_of([] { rp::WorkerOptions(std::string("liminal+tcp://127.0.0.1:1"), std::string(993, 'i')); }),
              RP_STATUS_INVALID_ARGUMENT);
    EXPECT_EQ(status_of([] { rp::WorkerOptions(std::string("liminal+tcp://127.0.0.1:1"), std::string(992, 'i')); }),
              RP_STATUS_OK);
}
