// Values are checked by the call that receives them: the wrapper throws
// rp::Error(RP_STATUS_INVALID_ARGUMENT) with the rule in its message from the constructor or
// setter that took the value, before anything connects.
#include <rp/rp.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

// Runs `f`, expecting rp::Error with `status` and a message containing `needle`.
template <class F> void expect_error(F f, rp_status status, const std::string &needle) {
    try {
        f();
        ADD_FAILURE() << "no exception; expected status " << status;
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), status) << e.what();
        EXPECT_NE(e.message().find(needle), std::string::npos) << e.what();
    }
}

}  // namespace

TEST(Validation, WorkerOptionsCheckIdentityAndServiceAtTheCall) {
    expect_error([] { rp::WorkerOptions("/tmp/none.sock", ""); }, RP_STATUS_INVALID_ARGUMENT, "1-256 bytes");
    expect_error([] { rp::WorkerOptions("/tmp/none.sock", std::string(299, 'w')); }, RP_STATUS_INVALID_ARGUMENT,
                 "identity is 299 bytes long");
    rp::WorkerOptions ok("/tmp/none.sock", std::string(256, 'w'));
    expect_error([&] { ok.service("Push_Service"); }, RP_STATUS_INVALID_ARGUMENT, "1-64 characters of [a-z0-9-]");
    EXPECT_NO_THROW(ok.service("push-2"));
}

TEST(Validation, BrokerOptionsCheckServiceAndVersionAtTheCall) {
    expect_error([] { rp::BrokerOptions("/tmp/none.sock", "Echo", "1.2.3"); }, RP_STATUS_INVALID_ARGUMENT,
                 "service_name \"Echo\" is invalid");
    expect_error([] { rp::BrokerOptions("/tmp/none.sock", "echo", "1.2"); }, RP_STATUS_INVALID_ARGUMENT,
                 "MAJOR.MINOR.PATCH");
    EXPECT_NO_THROW(rp::BrokerOptions("/tmp/none.sock", "echo", "1.2.3-rc.1"));
}

TEST(Validation, PushRequestRefusesFirstPartyProtocols) {
    expect_error([] { rp::PushRequest(0xAD01, {}); }, RP_STATUS_INVALID_ARGUMENT, "first-party");
    expect_error([] { rp::PushRequest(0x7001, {}).to_protocol(0x0000); }, RP_STATUS_INVALID_ARGUMENT, "first-party");
    EXPECT_NO_THROW(rp::PushRequest(0x7001, {}));
}
