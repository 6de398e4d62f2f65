// Socket access through the C++ wrapper: a push server and a broker open their path socket to
// one group (mode 0660, this process's group), and a mode with bits for others is refused.
#include <rp/rp.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/rp-access-hpp-XXXXXX";
        path = mkdtemp(tmpl);
    }
    ~TempDir() { rmdir(path.c_str()); }
};

}  // namespace

TEST(SocketAccess, GroupSocketOnPushServerAndBroker) {
    TempDir tmp;
    // librp creates each socket's directory: 0710 with the group, so the group can pass.
    const std::string pdir = tmp.path + "/p", bdir = tmp.path + "/b";
    const std::string sock = pdir + "/p.sock", bsock = bdir + "/b.sock";
    rp::ServerOptions opts(sock);
    opts.allow_other_uids(true).socket_access(0660, static_cast<std::int64_t>(getgid()));
    {
        auto server = rp::PushServer::bind(opts);
        struct stat st {};
        ASSERT_EQ(lstat(sock.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0660u);
        EXPECT_EQ(st.st_gid, getgid());
        ASSERT_EQ(lstat(pdir.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0710u);
    }
    rmdir(pdir.c_str());
    rp::BrokerServerOptions bopts(bsock);
    bopts.allow_other_uids(true).socket_access(0660);
    {
        auto broker = rp::BrokerServer::bind(bopts);
        struct stat st {};
        ASSERT_EQ(lstat(bsock.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0660u);
        ASSERT_EQ(lstat(bdir.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0710u);
    }
    rmdir(bdir.c_str());
}

TEST(SocketAccess, ModesForOthersAreRefused) {
    rp::ServerOptions opts("/tmp/rp-access-hpp-never/p.sock");
    try {
        opts.socket_access(0666);
        FAIL() << "0666 was accepted";
    } catch (const rp::Error &e) {
        EXPECT_EQ(e.status(), RP_STATUS_INVALID_ARGUMENT);
        EXPECT_NE(e.message().find("others nothing"), std::string::npos) << e.message();
    }
    rp::BrokerServerOptions bopts("/tmp/rp-access-hpp-never/b.sock");
    EXPECT_THROW(bopts.socket_access(0600, -5), rp::Error);
}
