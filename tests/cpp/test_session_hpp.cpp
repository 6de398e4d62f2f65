// rp::Session over a real Unix socket pair: calls both ways, a streamed answer, an exception in
// the dispatcher reaching the caller as the peer's error, and an answer given later from
// another thread.
#include <rp/rp.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::string str(const std::vector<std::uint8_t> &v) { return std::string(v.begin(), v.end()); }
rp::Bytes bytes(const std::string &s) { return rp::Bytes(reinterpret_cast<const std::uint8_t *>(s.data()), s.size()); }

// Both ends of a socket pair, each with a session whose dispatcher echoes with a prefix,
// streams three chunks for "stream", throws for "throw", and hands "later" to another thread.
struct Pair {
    std::vector<std::thread> later;
    rp::Session connecting, accepting;
    std::atomic<bool> stop{false};
    std::thread pump_connecting, pump_accepting;

    static rp::Session make(int fd, rp::SessionSide side, const std::string &prefix, std::vector<std::thread> *later) {
        return rp::Session::over(rp::Conn::adopt_fd(fd), side, [prefix, later](rp::SessionRequest &req) {
            std::string in(reinterpret_cast<const char *>(req.payload().data), req.payload().size);
            if (in == "throw") throw std::runtime_error("the dispatcher failed on purpose");
            if (in == "stream") {
                for (int i = 0; i < 3; i++) req.send_chunk(bytes("chunk " + std::to_string(i)));
                req.respond(bytes("end of stream"));
                return;
            }
            if (in == "later") {
                later->emplace_back([r = std::move(req)]() mutable {
                    std::this_thread::sleep_for(20ms);
                    try {
                        r.respond(bytes("answered later"));
                    } catch (const rp::Error &e) {
                        // The caller's side may have closed meanwhile (ClosingEndsWaitingCalls).
                        if (e.status() != RP_STATUS_CLOSED && e.status() != RP_STATUS_CANCELLED) ADD_FAILURE() << "respond: " << e.what();
                    }
                });
                return;
            }
            req.respond(bytes(prefix + in));
        });
    }

    static std::pair<int, int> sockets() {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) throw std::runtime_error("socketpair");
        return {sv[0], sv[1]};
    }

    explicit Pair(std::pair<int, int> fds = sockets())
        : connecting(make(fds.first, rp::SessionSide::Connecting, "connecting echoes: ", &later)),
          accepting(make(fds.second, rp::SessionSide::Accepting, "accepting echoes: ", &later)) {
        pump_connecting = std::thread([this] { pump(connecting); });
        pump_accepting = std::thread([this] { pump(accepting); });
    }
    // Serves until the test ends or the session is closed (dispatch then throws CLOSED).
    void pump(rp::Session &session) {
        try {
            while (!stop) session.dispatch(20ms);
        } catch (const rp::Error &e) {
            if (e.status() != RP_STATUS_CLOSED) ADD_FAILURE() << "dispatch: " << e.what();
        }
    }
    ~Pair() {
        stop = true;
        pump_connecting.join();
        pump_accepting.join();
        for (auto &t : later) t.join();
    }
};

TEST(Session, BothSidesCallEachOther) {
    Pair p;
    auto a = p.connecting.call(0xF100, bytes("hi"), 5s);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(str(*a), "accepting echoes: hi");
    auto b = p.accepting.call(0xF100, bytes("ho"), 5s);
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(str(*b), "connecting echoes: ho");
}

TEST(Session, StreamedAnswerArrivesInOrder) {
    Pair p;
    rp::SessionTicket call = p.connecting.call_start(0xF100, bytes("stream"));
    std::vector<std::string> chunks;
    bool ended = false;
    while (!ended) {
        auto chunk = call.next_chunk(5s, &ended);
        if (chunk) chunks.push_back(str(*chunk));
    }
    EXPECT_EQ(chunks, (std::vector<std::string>{"chunk 0", "chunk 1", "chunk 2"}));
    auto end = call.wait(5s);
    ASSERT_TRUE(end.has_value());
    EXPECT_EQ(str(*end), "end of stream");
}

TEST(Session, AnExceptionInTheDispatcherReachesTheCaller) {
    Pair p;
    try {
        (void)p.connecting.call(0xF100, bytes("throw"), 5s);
        FAIL() << "expected the peer's error";
    } catch (const rp::Error &e) {
        EXPECT_NE(std::string(e.what()).find("the dispatcher failed on purpose"), std::string::npos) << e.what();
    }
}

TEST(Session, AnAnswerCanComeLaterFromAnotherThread) {
    Pair p;
    auto a = p.accepting.call(0xF100, bytes("later"), 5s);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(str(*a), "answered later");
}

TEST(Session, AnInterruptedWaitLeavesTheCallGoingOn) {
    Pair p;
    rp::SessionTicket call = p.connecting.call_start(0xF100, bytes("later"));
    call.interrupt();
    auto started = std::chrono::steady_clock::now();
    EXPECT_FALSE(call.wait(5s).has_value());
    EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
    auto answer = call.wait(5s);
    ASSERT_TRUE(answer.has_value());
    EXPECT_EQ(str(*answer), "answered later");
}

TEST(Session, ClosingEndsWaitingCalls) {
    Pair p;
    rp::SessionTicket call = p.connecting.call_start(0xF100, bytes("later"));
    p.connecting.close();
    EXPECT_THROW((void)call.wait(5s), rp::Error);
}

}  // namespace
