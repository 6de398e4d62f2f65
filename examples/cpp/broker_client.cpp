// broker_client_cpp: reach a service's backend through a running-process broker with the C++
// wrapper (rp.hpp), send one v1 REQUEST on payload protocol 0x7001 and print the echoed reply.
//
//   broker_client_cpp BROKER_ENDPOINT SERVICE VERSION MESSAGE
//
// Prints the route taken and the reply; exits 0 when the reply's payload is MESSAGE, 1 on any
// failure (a refusal prints its code, reason and retry hint), 2 on bad usage.
//
// Against the legacy daemon example (which echoes v1 frames on 0x7001):
//   legacy_daemon /tmp/rp/backend.sock &
//   broker_client --serve /tmp/rp/broker.sock demo /tmp/rp/backend.sock 1.0.0 &
//   broker_client_cpp /tmp/rp/broker.sock demo 1.0.0 "hi there"
#include <rp/rp.hpp>

#include <cstdio>
#include <iostream>
#include <string>

using namespace std::chrono_literals;

int main(int argc, char **argv) {
    if (argc != 5) {
        std::cerr << "usage: broker_client_cpp BROKER_ENDPOINT SERVICE VERSION MESSAGE\n";
        return 2;
    }
    const std::string message = argv[4];
    try {
        rp::BrokerConnection c = rp::connect_broker(rp::BrokerOptions(argv[1], argv[2], argv[3]).adopt_handoff(true));
        std::cout << "route: " << rp::to_string(c.result.route) << ", backend: " << c.result.endpoint;
        if (!c.result.daemon_version.empty()) std::cout << ", daemon version " << c.result.daemon_version;
        std::cout << std::endl;

        rp::Frame request;
        request.payload_protocol = 0x7001;
        request.request_id = 1;
        request.payload = rp::Bytes(std::string_view(message));
        c.conn.send(request);
        std::optional<rp::ReceivedFrame> reply = c.conn.recv(5000ms);
        if (!reply) {
            std::cerr << "broker_client_cpp: no reply within 5 s\n";
            return 1;
        }
        std::cout << "reply: " << reply->frame().payload.str() << std::endl;
        if (reply->frame().request_id != 1 || reply->frame().payload.str() != message) {
            std::cerr << "broker_client_cpp: the reply is not the echo of the request\n";
            return 1;
        }
        return 0;
    } catch (const rp::Refused &r) {
        std::cerr << "broker_client_cpp: refused: code " << r.code() << ", retry after " << r.retry_after().count()
                  << " ms: " << r.reason() << "\n";
    } catch (const rp::Error &e) {
        std::cerr << "broker_client_cpp: " << e.what() << "\n";
    }
    return 1;
}
