// Header and wrapper hygiene: enum-typed parameters and results in rp.h,
// the withdrawn no-op rp_push_worker_options_set_max_queued gone from rp.h and rp.hpp, and
// bytes taken as std::string, std::string_view or a literal.
#include <rp/rp.hpp>

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace {

// True when `rp_push_worker_options_set_max_queued` is declared (found at instantiation).
template <class T, class = void> struct declares_set_max_queued : std::false_type {};
template <class T>
struct declares_set_max_queued<T, std::void_t<decltype(rp_push_worker_options_set_max_queued(std::declval<T>(), 1))>>
    : std::true_type {};

template <class T, class = void> struct has_max_queued : std::false_type {};
template <class T>
struct has_max_queued<T, std::void_t<decltype(std::declval<T &>().max_queued(1))>> : std::true_type {};

}  // namespace

static_assert(std::is_same_v<decltype(rp_broker_result_route(nullptr)), rp_broker_route>,
              "rp_broker_result_route returns an rp_broker_route");
static_assert(std::is_same_v<decltype(&rp_session_new),
                             rp_status (*)(rp_conn *, rp_session_side, rp_session_request_callback, void *,
                                           rp_user_data_free_callback, rp_session **)>,
              "rp_session_new takes an rp_session_side");
static_assert(!declares_set_max_queued<rp_push_worker_options *>::value,
              "rp_push_worker_options_set_max_queued is withdrawn from rp.h");
static_assert(!has_max_queued<rp::WorkerOptions>::value, "rp::WorkerOptions::max_queued is withdrawn");

TEST(Hygiene, RouteOfNullIsNone) { EXPECT_EQ(rp_broker_result_route(nullptr), RP_BROKER_ROUTE_NONE); }

TEST(Hygiene, BytesFromStrings) {
    std::string owned("abc");
    std::string_view view("de");
    rp::Bytes a(owned), b(view), c("fgh"), d(std::string_view{});
    EXPECT_EQ(a.str(), "abc");
    EXPECT_EQ(b.str(), "de");
    EXPECT_EQ(c.str(), "fgh");
    EXPECT_TRUE(d.empty());
    // Every call that takes bytes accepts them directly.
    rp::PushRequest from_string(0x7001, owned);
    rp::PushRequest from_literal(0x7001, "job");
    rp::Frame f;
    f.payload = owned;
    EXPECT_EQ(f.payload.str(), "abc");
}
