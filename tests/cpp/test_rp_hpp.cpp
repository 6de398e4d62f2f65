// Tests of the C++ wrapper (bindings/cpp/include/rp/rp.hpp) over real sockets.
// The broker client, rp::Conn and rp::BrokerServer are tested in test_broker_hpp.cpp; the
// C++ broker client demo (a C++ client reaching examples/c/legacy_daemon.c through a broker)
// runs examples/cpp/broker_client.cpp under ctest (scripts/broker-demo-cpp.sh).
#include <rp/rp.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace std::chrono_literals;

namespace {

std::string temp_socket(const char *name) {
    char tmpl[] = "/tmp/rpcppXXXXXX";
    const char *dir = mkdtemp(tmpl);
    if (dir == nullptr) throw std::runtime_error("mkdtemp");
    return std::string(dir) + "/" + name;
}

bool write_all(int fd, rp::Bytes b) {
    std::size_t off = 0;
    while (off < b.size) {
        ssize_t n = send(fd, b.data + off, b.size - off, MSG_NOSIGNAL);
        if (n <= 0) return false;
        off += static_cast<std::size_t>(n);
    }
    return true;
}

// Reads one frame from fd (blocking) into storage; returns the decoded view.
rp::Frame read_frame(int fd, std::vector<std::uint8_t> &storage) {
    storage.clear();
    for (;;) {
        if (auto d = rp::decode(storage)) {
            storage.resize(d->length);
            return rp::decode(storage)->frame;
        }
        std::uint8_t chunk[4096];
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n <= 0) throw std::runtime_error("peer closed");
        storage.insert(storage.end(), chunk, chunk + n);
    }
}

}  // namespace

TEST(Frame, RoundTripAndErrors) {
    rp::Frame f;
    f.kind = RP_FRAME_KIND_EVENT;
    f.payload_protocol = 0x7001;
    f.request_id = 77;
    f.payload = rp::Bytes(std::string_view("payload"));
    f.traceparent = "tp";
    std::vector<std::uint8_t> buf = rp::encode(f);
    ASSERT_EQ(buf[0], RP_FRAMING_VERSION);

    std::size_t needed = 0;
    EXPECT_FALSE(rp::decode(rp::Bytes(buf.data(), 3), 0, &needed).has_value());
    EXPECT_EQ(needed, RP_FRAME_HEADER_LEN);
    EXPECT_FALSE(rp::decode(rp::Bytes(buf.data(), buf.size() - 1), 0, &needed).has_value());
    EXPECT_EQ(needed, buf.size());

    auto d = rp::decode(buf);
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->length, buf.size());
    EXPECT_EQ(d->frame.kind, RP_FRAME_KIND_EVENT);
    EXPECT_EQ(d->frame.request_id, 77u);
    EXPECT_EQ(d->frame.payload.str(), "payload");
    EXPECT_EQ(d->frame.traceparent, "tp");
    EXPECT_GE(d->frame.payload.data, buf.data());  // a view into buf
    EXPECT_LT(d->frame.payload.data, buf.data() + buf.size());

    auto resp = rp::encode_response(d->frame, rp::Bytes(std::string_view("answer")));
    auto r = rp::decode(resp);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->frame.kind, RP_FRAME_KIND_RESPONSE);
    EXPECT_EQ(r->frame.request_id, 77u);
    EXPECT_EQ(r->frame.payload.str(), "answer");

    std::vector<std::uint8_t> bad{9, 0, 0, 0, 0};
    try {
        (void)rp::decode(bad);
        FAIL() << "decode accepted a bad framing byte";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_UNSUPPORTED_FRAMING);
        EXPECT_FALSE(e.message().empty());
        EXPECT_NE(std::string(e.what()).find(e.message()), std::string::npos);
    }
    rp::Frame invalid;
    invalid.tracestate = "\xff";
    try {
        (void)rp::encode(invalid);
        FAIL() << "invalid UTF-8 accepted";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_INVALID_UTF8);
    }
}

// A daemon thread serves its legacy wire, a v1 request and an identity probe on one socket
// pair through a Mux with a C++ lambda as legacy detector.
TEST(Mux, DaemonOverSocketPair) {
    rp::DaemonIdentity id;
    id.pid(99).exe_path("/usr/bin/demo").endpoint("demo", "/tmp/demo.sock").boot_id("b").started_at_unix_ms(1).idle_timeout(10s);
    auto detector_state = std::make_shared<int>(0);
    std::weak_ptr<int> alive = detector_state;
    {
        rp::Mux mux(id, {0x7001}, [state = std::move(detector_state)](rp::Bytes b) {
            return b.data[0] == '#' ? RP_LEGACY_VERDICT_LEGACY : RP_LEGACY_VERDICT_NOT_LEGACY;
        });
        rp::Mux copy = mux;  // a second reference to the same mux

        int sv[2];
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        std::thread daemon([&copy, fd = sv[1]] {
            std::vector<std::uint8_t> buf;
            std::uint8_t chunk[4096];
            for (;;) {
                rp::MuxEvent ev = copy.poll(buf);
                if (ev.kind == RP_MUX_EVENT_KIND_NEED_MORE_BYTES) {
                    ssize_t n = read(fd, chunk, sizeof chunk);
                    if (n <= 0) break;
                    buf.insert(buf.end(), chunk, chunk + n);
                    continue;
                }
                std::size_t consumed = ev.consumed;
                if (ev.kind == RP_MUX_EVENT_KIND_LEGACY) {
                    auto nl = std::find(buf.begin(), buf.end(), '\n');
                    if (nl == buf.end()) {
                        ssize_t n = read(fd, chunk, sizeof chunk);
                        if (n <= 0) break;
                        buf.insert(buf.end(), chunk, chunk + n);
                        continue;
                    }
                    consumed = static_cast<std::size_t>(nl - buf.begin()) + 1;
                    write_all(fd, rp::Bytes(buf.data(), consumed));
                } else if (ev.kind == RP_MUX_EVENT_KIND_PROBE_ANSWERED) {
                    write_all(fd, ev.reply);
                } else {
                    write_all(fd, rp::encode_response(ev.frame, ev.frame.payload));
                }
                buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(consumed));
            }
            close(fd);
        });
        int c = sv[0];
        std::vector<std::uint8_t> storage;
        ASSERT_TRUE(write_all(c, rp::Bytes(std::string_view("#hello\n"))));
        char echo[7] = {};
        ASSERT_EQ(read(c, echo, 7), 7);
        EXPECT_EQ(std::string(echo, 7), "#hello\n");

        rp::Frame req;
        req.payload_protocol = 0x7001;
        req.request_id = 5;
        req.payload = rp::Bytes(std::string_view("ping"));
        ASSERT_TRUE(write_all(c, rp::encode(req)));
        rp::Frame resp = read_frame(c, storage);
        EXPECT_EQ(resp.kind, RP_FRAME_KIND_RESPONSE);
        EXPECT_EQ(resp.request_id, 5u);
        EXPECT_EQ(resp.payload.str(), "ping");

        std::vector<std::uint8_t> nonce(32, 0x33);
        rp::Frame probe;
        probe.payload_protocol = RP_PROTOCOL_IDENTITY_PROBE;
        probe.request_id = 6;
        probe.payload = rp::Bytes(nonce);
        ASSERT_TRUE(write_all(c, rp::encode(probe)));
        rp::Frame pr = read_frame(c, storage);
        EXPECT_EQ(pr.request_id, 6u);
        ASSERT_GT(pr.payload.size, 32u);
        EXPECT_EQ(0, std::memcmp(pr.payload.data, nonce.data(), 32));
        std::vector<std::uint8_t> ident = id.encode();
        EXPECT_EQ(std::vector<std::uint8_t>(pr.payload.begin() + 32, pr.payload.end()), ident);

        shutdown(c, SHUT_WR);
        daemon.join();
        close(c);
        EXPECT_FALSE(alive.expired());  // both references keep the detector
    }
    EXPECT_TRUE(alive.expired());  // the last rp_mux_free released the boxed detector
}

TEST(Mux, DetectorExceptionIsRethrownByPoll) {
    rp::DaemonIdentity id;
    rp::Mux mux(id, {0x7001}, [](rp::Bytes b) -> rp_legacy_verdict {
        if (b.data[0] == '!') throw std::runtime_error("detector failed");
        return b.data[0] == '?' ? RP_LEGACY_VERDICT_NEED_MORE : RP_LEGACY_VERDICT_NOT_LEGACY;
    });
    EXPECT_THROW(
        {
            try {
                (void)mux.poll(rp::Bytes(std::string_view("!x")));
            } catch (const std::runtime_error &e) {
                EXPECT_STREQ(e.what(), "detector failed");
                throw;
            }
        },
        std::runtime_error);
    EXPECT_EQ(mux.poll(rp::Bytes(std::string_view("?"))).kind, RP_MUX_EVENT_KIND_NEED_MORE_BYTES);
    rp::Frame ctl;
    try {
        (void)mux.poll(rp::encode(ctl));
        FAIL() << "control frame accepted";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_FIRST_PARTY_FRAME);
    }
    EXPECT_THROW(rp::Mux(id, {RP_PROTOCOL_HANDOFF}), rp::Error);
}

TEST(Push, WorkerAndServerWithCallbacks) {
    std::string ep = temp_socket("push.sock");
    std::vector<std::string> events;
    auto server = rp::PushServer::bind(
        rp::ServerOptions(ep)
            .on_registration([](const rp::WorkerInfo &w) {
                if (w.identity == "eve") return rp::Registration::rejected("eve is not welcome");
                if (w.identity == "thrower") throw std::runtime_error("registration exploded");
                return rp::Registration::accepted();
            })
            .on_worker([&events](const rp::WorkerInfo &w, bool connected, std::string_view) {
                events.push_back(w.identity + (connected ? "+" : "-"));
                if (w.identity == "bob" && !connected) throw std::logic_error("bob left");
            }));
    EXPECT_EQ(server.endpoint(), ep);

    // Registrations are decided inside dispatch: run it while the workers connect.
    std::atomic<bool> stop{false};
    std::exception_ptr dispatch_error;  // read by this thread only after the join
    std::atomic<bool> dispatch_failed{false};
    std::thread dispatcher([&] {
        try {
            while (!stop) server.dispatch(20ms);
        } catch (...) {
            dispatch_error = std::current_exception();
            dispatch_failed = true;
        }
    });
    auto opts = [&](const char *name) {
        rp::WorkerOptions o(ep, name, "q");
        o.add_payload_protocol(0x7001).add_namespace("ns").node("n1");
        return o;
    };
    try {
        (void)rp::Worker::connect(opts("eve"));
        FAIL() << "eve registered";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_REJECTED);
        EXPECT_NE(e.message().find("eve is not welcome"), std::string::npos);
    }
    try {
        (void)rp::Worker::connect(opts("thrower"));
        FAIL() << "a throwing registration callback accepted";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_REJECTED);
        EXPECT_NE(e.message().find("registration exploded"), std::string::npos);
    }
    rp::Worker alice = rp::Worker::connect(opts("alice"));
    EXPECT_NE(alice.worker_id(), 0u);
    EXPECT_GE(alice.fd(), 0);
    EXPECT_FALSE(alice.recv(0ms).has_value());

    std::vector<rp::WorkerInfo> ws;
    for (int i = 0; i < 500 && ws.size() != 1; i++) {
        ws = server.workers();
        std::this_thread::sleep_for(5ms);
    }
    ASSERT_EQ(ws.size(), 1u);
    EXPECT_EQ(ws[0].identity, "alice");
    EXPECT_EQ(ws[0].task_queue, "q");
    EXPECT_EQ(ws[0].node, "n1");
    EXPECT_EQ(ws[0].namespaces, std::vector<std::string>{"ns"});
    EXPECT_EQ(ws[0].payload_protocols, std::vector<std::uint32_t>{0x7001});
    EXPECT_TRUE(ws[0].has_peer);
    EXPECT_EQ(ws[0].pid, static_cast<std::uint32_t>(getpid()));

    // recv/reply on one thread while the server waits on another.
    std::thread worker([&] {
        auto p = alice.recv(5000ms);
        ASSERT_TRUE(p.has_value());
        std::string up(p->payload().str());
        for (auto &ch : up) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        EXPECT_EQ(p->traceparent(), "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01");
        alice.reply(p->correlation_id(), rp::Bytes(std::string_view(up)));
    });
    auto res = server.push_wait(rp::PushRequest(0x7001, rp::Bytes(std::string_view("hello")))
                                    .traceparent("00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"),
                                5000ms);
    worker.join();
    ASSERT_TRUE(res.has_value());
    EXPECT_FALSE(res->is_failure());
    EXPECT_EQ(res->payload().str(), "HELLO");

    // Handler mode: a throwing handler answers with a failure carrying what().
    auto counter = std::make_shared<int>(0);
    std::weak_ptr<int> handler_alive = counter;
    alice.set_handler([counter](const rp::Worker &c, rp::PushView p) {
        ++*counter;
        if (p.payload().str() == "boom") throw std::runtime_error("handler failed");
        if (p.payload().str() == "nf") throw rp::Error(RP_STATUS_NOT_FOUND, "nothing");
        c.reply(p.correlation_id(), p.payload());
    });
    counter.reset();
    for (std::string_view job : {"ok", "boom", "nf"}) {
        rp::PushTicket t = server.push(rp::PushRequest(0x7001, rp::Bytes(job)).to_worker(alice.worker_id()));
        EXPECT_EQ(alice.dispatch(5000ms, 1), 1u);
        auto r = t.wait(5000ms);
        ASSERT_TRUE(r.has_value());
        EXPECT_TRUE(t.done());
        if (job == "ok") {
            EXPECT_FALSE(r->is_failure());
            EXPECT_EQ(r->payload().str(), "ok");
        } else if (job == "boom") {
            EXPECT_TRUE(r->is_failure());
            EXPECT_EQ(r->failure_code(), 1001);
            EXPECT_EQ(r->failure_message(), "handler failed");
        } else {
            EXPECT_TRUE(r->is_failure());
            EXPECT_EQ(r->failure_code(), RP_STATUS_NOT_FOUND);
        }
    }
    EXPECT_EQ(alice.dispatch(10ms), 0u);  // nothing waiting: a timeout is not an error
    EXPECT_FALSE(handler_alive.expired());
    alice.clear_handler();
    EXPECT_TRUE(handler_alive.expired());  // user_data_free released the boxed handler

    try {
        (void)server.push_wait(rp::PushRequest(0x7001, {}).to_task_queue("nobody"), 1000ms);
        FAIL() << "push to an empty queue";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_NOT_FOUND);
    }

    // A second worker leaving makes the worker callback throw: dispatch rethrows it.
    {
        rp::Worker bob = rp::Worker::connect(opts("bob"));
        (void)bob;
    }
    for (int i = 0; i < 500 && !dispatch_failed; i++) std::this_thread::sleep_for(5ms);
    stop = true;
    dispatcher.join();
    ASSERT_TRUE(dispatch_error);
    EXPECT_THROW(std::rethrow_exception(dispatch_error), std::logic_error);
    EXPECT_EQ(events, (std::vector<std::string>{"alice+", "bob+", "bob-"}));

    // close() from another thread unblocks recv with CLOSED.
    std::thread closer([&] {
        std::this_thread::sleep_for(50ms);
        alice.close();
    });
    try {
        (void)alice.recv(rp::forever);
        FAIL() << "recv returned after close";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_CLOSED);
    }
    closer.join();
    alice.close();  // idempotent
}

TEST(Push, RefusedHello) {
    std::string ep = temp_socket("svc.sock");
    auto server = rp::PushServer::bind(rp::ServerOptions(ep).service("svc-a"));
    try {
        (void)rp::Worker::connect(rp::WorkerOptions(ep, "w").add_payload_protocol(0x7001).service("svc-b"));
        FAIL() << "wrong service accepted";
    } catch (const rp::Refused &e) {
        EXPECT_EQ(e.status(), RP_STATUS_REFUSED);
        EXPECT_EQ(e.code(), RP_ERROR_CODE_SERVICE_UNKNOWN);
    }
    try {
        (void)rp::Worker::connect(rp::WorkerOptions(temp_socket("none.sock"), "w"));
        FAIL() << "connected to nothing";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_IO);
    }
    server.shutdown();
    EXPECT_THROW((void)server.push(rp::PushRequest(0x7001, {})), rp::Error);
}

TEST(Handles, MoveOnlyAndRelease) {
    static_assert(!std::is_copy_constructible_v<rp::Worker>);
    static_assert(std::is_nothrow_move_constructible_v<rp::Worker>);
    static_assert(!std::is_copy_constructible_v<rp::DaemonIdentity>);
    static_assert(std::is_copy_constructible_v<rp::Mux>);
    rp::DaemonIdentity a;
    rp::DaemonIdentity b = std::move(a);
    EXPECT_EQ(a.capi(), nullptr);
    rp_daemon_identity *raw = b.release();
    EXPECT_NE(raw, nullptr);
    rp_daemon_identity_free(raw);
}

namespace {
std::vector<std::uint8_t> read_vector(const char *name) {
    std::ifstream in(std::string(RP_VECTORS_DIR) + "/" + name);
    std::string hex((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        if (!std::isxdigit(static_cast<unsigned char>(hex[i]))) break;
        out.push_back(static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    return out;
}
constexpr std::size_t kOfferTokenOffset = 15;  // token bytes inside handoff_offer.hex
}  // namespace

TEST(Handoff, ServeOfferOnceThenReject) {
    std::vector<std::uint8_t> offer = read_vector("handoff_offer.hex");
    ASSERT_EQ(offer.size(), 44u);
    rp::HandoffStore store;
    ASSERT_TRUE(store.insert(rp::Bytes(offer.data() + kOfferTokenOffset, RP_HANDOFF_TOKEN_LEN)));
    EXPECT_THROW(store.insert(rp::Bytes(offer.data(), 3)), rp::Error);
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    for (bool want : {true, false}) {
        ASSERT_TRUE(write_all(sv[0], offer));
        auto o = store.serve_offer(sv[1], 1000ms);
        ASSERT_TRUE(o.has_value());
        EXPECT_EQ(o->accepted, want);
        EXPECT_EQ(o->correlation_id, 77u);
        std::vector<std::uint8_t> storage;
        rp::Frame ack = read_frame(sv[0], storage);
        EXPECT_EQ(ack.kind, RP_FRAME_KIND_RESPONSE);
        EXPECT_EQ(ack.request_id, 77u);
    }
    EXPECT_FALSE(store.serve_offer(sv[1], 20ms).has_value());
    close(sv[0]);
    close(sv[1]);

    rp::HandoffStore one(1, 60000ms);
    auto t1 = one.issue();
    ASSERT_TRUE(t1.has_value());
    EXPECT_FALSE(one.issue().has_value());  // full
}
