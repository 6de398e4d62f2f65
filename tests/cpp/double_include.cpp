// rp.hpp survives double inclusion (and inclusion after rp.h), and, being linked into the same
// program as test_rp_hpp.cpp, has no non-inline definitions (no duplicate symbols).
#include <rp.h>
#include <rp/rp.hpp>
#include <rp/rp.hpp>

#include <gtest/gtest.h>

TEST(Header, DoubleIncludeCompilesAndLinks) {
    EXPECT_EQ(rp::version(), std::string_view(rp_version_string()));
    EXPECT_EQ(rp_version_number(), static_cast<uint32_t>(RP_VERSION));
}
