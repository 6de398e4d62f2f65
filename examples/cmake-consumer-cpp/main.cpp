// Encodes and decodes one frame with the C++ wrapper of an installed librp.
#include <rp/rp.hpp>

#include <cstdio>

int main() {
    rp::Frame f;
    f.payload_protocol = 0x7001;
    f.request_id = 1;
    f.payload = rp::Bytes(std::string_view("hi"));
    std::vector<std::uint8_t> buf = rp::encode(f);
    auto d = rp::decode(buf);
    if (!d || d->frame.payload.str() != "hi") return 1;
    std::printf("rp.hpp over librp %s: %zu-byte frame\n", rp_version_string(), buf.size());
    return 0;
}
