// The broker client (rp::connect_broker), rp::Conn, admin requests and rp::BrokerServer over
// real Unix sockets. The backend is a thread of this process: it accepts on a Unix socket,
// adopts each connection with rp::Conn::adopt_fd and answers every request on protocol
// 0x7001 with its payload in upper case.
#include <rp/rp.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <mutex>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;

namespace {

// A fresh owner-only directory, removed (with what is left in it) at the end of the test.
class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/rpcppbXXXXXX";
        const char *dir = mkdtemp(tmpl);
        if (dir == nullptr) throw std::runtime_error("mkdtemp");
        path_ = dir;
    }
    ~TempDir() {
        for (const char *name : {"backend.sock", "broker.sock", "limited.sock"})
            unlink((path_ + "/" + name).c_str());
        rmdir(path_.c_str());
    }
    operator const std::string &() const { return path_; }
    std::string operator+(const char *name) const { return path_ + name; }

private:
    std::string path_;
};

int listen_unix(const std::string &path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, sizeof a.sun_path - 1);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || listen(fd, 16) != 0)
        throw std::runtime_error("listen " + path);
    return fd;
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (char &c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

class Backend {
public:
    explicit Backend(std::string path) : path_(std::move(path)), listen_fd_(listen_unix(path_)) {
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~Backend() {
        stop_ = true;
        shutdown(listen_fd_, SHUT_RDWR);  // wakes accept
        acceptor_.join();
        for (auto &t : workers_) t.join();
        close(listen_fd_);
        unlink(path_.c_str());
    }
    const std::string &path() const { return path_; }
    int served() const { return served_; }

private:
    void accept_loop() {
        for (;;) {
            int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) return;
            workers_.emplace_back([this, fd] { serve(rp::Conn::adopt_fd(fd)); });
        }
    }
    void serve(const rp::Conn &conn) {
        try {
            while (!stop_) {
                auto got = conn.recv(50ms);
                if (!got) continue;
                std::string reply = upper(got->frame().payload.str());
                rp::Frame f = got->frame();
                f.kind = RP_FRAME_KIND_RESPONSE;
                f.payload = rp::Bytes(std::string_view(reply));
                conn.send(f);
                served_++;
            }
        } catch (const rp::Error &e) {
            if (e.status() != RP_STATUS_CLOSED) ADD_FAILURE() << "backend: " << e.what();
        }
    }
    std::string path_;
    int listen_fd_;
    std::atomic<bool> stop_{false};
    std::atomic<int> served_{0};
    std::thread acceptor_;
    std::vector<std::thread> workers_;  // touched by the acceptor only until it is joined
};

void exchange(const rp::Conn &conn, std::uint64_t id, const std::string &text) {
    rp::Frame f;
    f.payload_protocol = 0x7001;
    f.request_id = id;
    f.payload = rp::Bytes(std::string_view(text));
    conn.send(f);
    auto got = conn.recv(5000ms);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->frame().kind, RP_FRAME_KIND_RESPONSE);
    EXPECT_EQ(got->frame().request_id, id);
    EXPECT_EQ(got->frame().payload_protocol, 0x7001u);
    EXPECT_EQ(got->frame().payload.str(), upper(text));
}

rp::BrokerServer start_broker(const std::string &dir, const std::string &backend) {
    return rp::BrokerServer::bind(rp::BrokerServerOptions(dir + "/broker.sock")
                                      .add_service("echo", backend, "1.2.3")
                                      .block_version("echo", "1.0.0")
                                      .min_version("echo", "0.5.0")
                                      .add_service("picky", backend, "2.0.0")
                                      .allow_version("picky", "2.0.0")
                                      .hello_timeout(3000ms));
}

}  // namespace

TEST(Broker, NegotiatedThenHelloSkip) {
    TempDir dir;
    Backend backend(dir + "/backend.sock");
    rp::BrokerServer broker = start_broker(dir, backend.path());
    EXPECT_EQ(broker.endpoint(), dir + "/broker.sock");

    rp::BrokerConnection c = rp::connect_broker(rp::BrokerOptions(std::string(broker.endpoint()), "echo", "1.2.3")
                                                    .client_version("cpp-test/1")
                                                    .timeout(3000ms));
    EXPECT_EQ(c.result.route, rp::Route::negotiated);
    EXPECT_EQ(rp::to_string(c.result.route), "negotiated");
    EXPECT_EQ(c.result.endpoint, backend.path());
    EXPECT_EQ(c.result.daemon_version, "1.2.3");
    EXPECT_NE(c.result.connection_id, 0u);
    exchange(c.conn, 1, "through the broker");
    EXPECT_GE(c.conn.fd(), 0);
    auto cred = c.conn.peer_credentials();
    ASSERT_TRUE(cred.has_value());
    EXPECT_EQ(cred->pid, static_cast<std::uint32_t>(getpid()));
    EXPECT_EQ(cred->uid, static_cast<std::uint32_t>(getuid()));
    EXPECT_FALSE(c.conn.recv(0ms).has_value());  // nothing more: a timeout is not an error

    rp::BrokerConnection skip = rp::connect_broker(
        rp::BrokerOptions(std::string(broker.endpoint()), "echo", "1.2.3").cached_endpoint(c.result.endpoint));
    EXPECT_EQ(skip.result.route, rp::Route::hello_skip);
    EXPECT_EQ(skip.result.daemon_version, "");
    exchange(skip.conn, 2, "no hello this time");

    // close() wakes a blocked recv from another thread; later calls throw CLOSED.
    std::thread waiter([&] {
        try {
            (void)skip.conn.recv(rp::forever);
            ADD_FAILURE() << "recv returned a frame";
        } catch (const rp::Error &e) {
            EXPECT_EQ(e.status(), RP_STATUS_CLOSED);
        }
    });
    std::this_thread::sleep_for(100ms);
    skip.conn.close();
    skip.conn.close();  // idempotent
    waiter.join();
    try {
        exchange(skip.conn, 3, "closed");
        FAIL() << "send after close";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_CLOSED);
    }
    EXPECT_GE(backend.served(), 2);
}

TEST(Broker, RefusalsCarryCodeAndRetryHint) {
    TempDir dir;
    Backend backend(dir + "/backend.sock");
    rp::BrokerServer broker = start_broker(dir, backend.path());
    std::string ep(broker.endpoint());
    struct Case {
        const char *service, *version;
        int32_t code;
        bool retry;
    };
    for (const Case &tc : {Case{"nosuch", "1.2.3", RP_ERROR_CODE_SERVICE_UNKNOWN, false},
                           Case{"echo", "1.0.0", RP_ERROR_CODE_VERSION_BLOCKED, false},
                           Case{"echo", "0.4.0", RP_ERROR_CODE_VERSION_BLOCKED, true},
                           Case{"picky", "1.2.3", RP_ERROR_CODE_VERSION_BLOCKED, true}}) {
        try {
            rp::connect_broker(rp::BrokerOptions(ep, tc.service, tc.version));
            ADD_FAILURE() << tc.service << " " << tc.version << ": connected";
        } catch (const rp::Refused &r) {
            EXPECT_EQ(r.status(), RP_STATUS_REFUSED);
            EXPECT_EQ(r.code(), tc.code) << tc.service << " " << tc.version;
            EXPECT_FALSE(r.reason().empty());
            EXPECT_EQ(r.retry_after().count() > 0, tc.retry) << tc.service << " " << tc.version;
        }
    }

    auto health = rp::admin_request(ep, rp::AdminVerb::healthz, "", 2000ms);
    ASSERT_TRUE(health.has_value());
    EXPECT_EQ(health->exit_code, 0u);
    EXPECT_EQ(health->body, "ok");

    broker.begin_shutdown();
    try {
        rp::connect_broker(rp::BrokerOptions(ep, "echo", "1.2.3"));
        ADD_FAILURE() << "connected while shutting down";
    } catch (const rp::Refused &r) {
        EXPECT_EQ(r.code(), RP_ERROR_CODE_SHUTTING_DOWN);
        EXPECT_GT(r.retry_after().count(), 0);
    }
}

TEST(Broker, RateLimitedAndDisabledByEnv) {
    TempDir dir;
    Backend backend(dir + "/backend.sock");
    rp::BrokerServer broker = rp::BrokerServer::bind(
        rp::BrokerServerOptions(dir + "/limited.sock").add_service("echo", backend.path(), "1.2.3").rate_limit(1, 60000ms));
    std::string ep(broker.endpoint());
    { rp::BrokerConnection first = rp::connect_broker(rp::BrokerOptions(ep, "echo", "1.2.3")); }
    try {
        rp::connect_broker(rp::BrokerOptions(ep, "echo", "1.2.3"));
        ADD_FAILURE() << "second Hello accepted";
    } catch (const rp::Refused &r) {
        EXPECT_EQ(r.code(), RP_ERROR_CODE_RATE_LIMITED);
        EXPECT_GT(r.retry_after().count(), 0);
    }

    ASSERT_EQ(setenv("RUNNING_PROCESS_DISABLE", "1", 1), 0);
    EXPECT_TRUE(rp::disabled_by_env());
    try {
        rp::connect_broker(rp::BrokerOptions(ep, "echo", "1.2.3").honor_disable_env(true));
        ADD_FAILURE() << "connected although disabled";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_DISABLED);
    }
    ASSERT_EQ(setenv("RUNNING_PROCESS_DISABLE", "maybe", 1), 0);
    try {
        (void)rp::disabled_by_env();
        ADD_FAILURE() << "a bad value accepted";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_CONFIG);
    }
    unsetenv("RUNNING_PROCESS_DISABLE");
    EXPECT_FALSE(rp::disabled_by_env());
}

TEST(Broker, BadArgumentsThrow) {
    try {
        rp::BrokerServerOptions("/tmp/x.sock").allow_version("nope", "1.0.0");
        FAIL() << "allow_version for an unknown service accepted";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_NOT_FOUND);
    }
    try {
        (void)rp::Conn::adopt_fd(-1);
        FAIL() << "a negative fd accepted";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_INVALID_ARGUMENT);
    }
    static_assert(!std::is_copy_constructible_v<rp::Conn>);
    static_assert(std::is_nothrow_move_constructible_v<rp::Conn>);
    static_assert(!std::is_copy_constructible_v<rp::BrokerServer>);
}
