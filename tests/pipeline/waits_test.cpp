// Waiting on the reactor from fibers: file descriptors, offloaded work and
// TCP streams, on a real epoll loop.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "brubeck/pipeline/offload.hpp"
#include "brubeck/pipeline/spawn.hpp"
#include "brubeck/pipeline/tcp_stream.hpp"
#include "support/fiber_runner.hpp"
#include "support/process.hpp"

namespace brubeck {
namespace {

using namespace std::chrono_literals;
using testing::run_fiber;

TEST(WaitFd, ReadableAfterTheOtherFiberWrites) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  std::string got;
  run_fiber([&] {
    auto writer = spawn([&] {
      this_fiber::sleep_for(20ms);
      ASSERT_EQ(::write(fds[1], "hi", 2), 2);
    });
    ASSERT_TRUE(Reactor::current()->wait_fd(fds[0], EPOLLIN, Clock::now() + 5s));
    char buf[8];
    auto n = ::read(fds[0], buf, sizeof buf);
    ASSERT_GT(n, 0);
    got.assign(buf, static_cast<std::size_t>(n));
    writer.join();
    EXPECT_FALSE(Reactor::current()->wait_fd(fds[0], EPOLLIN, Clock::now() + 10ms))
        << "nothing more to read: the wait times out";
  });
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_EQ(got, "hi");
}

TEST(Offload, RunsOnAnotherThreadWhileTheShardServesOthers) {
  std::thread::id shard = std::this_thread::get_id();
  std::thread::id worker;
  int ticks = 0;
  int result = 0;
  run_fiber([&] {
    auto ticker = spawn([&] {
      for (int i = 0; i < 10; ++i) {
        this_fiber::sleep_for(5ms);
        ++ticks;
      }
    });
    result = offload([&] {
      worker = std::this_thread::get_id();
      std::this_thread::sleep_for(200ms);  // blocking, but not the shard
      return 42;
    });
    ticker.join();
  });
  EXPECT_EQ(result, 42);
  EXPECT_NE(worker, shard);
  EXPECT_EQ(ticks, 10);
}

TEST(Offload, ExceptionsComeBackAndAFullQueueIsRefused) {
  OffloadPool pool(1, 1);
  std::string error;
  bool refused = false;
  run_fiber([&] {
    try {
      offload(pool, []() -> int { throw std::runtime_error("bad job"); });
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
    auto release = std::make_shared<std::atomic<bool>>(false);
    struct Release {
      std::shared_ptr<std::atomic<bool>> flag;
      ~Release() { *flag = true; }  // whatever happens, the worker gets free
    } guard{release};
    auto blocker = spawn([release, &pool] {
      offload(pool, [release] {
        while (!*release) std::this_thread::sleep_for(1ms);
      });
    });
    this_fiber::sleep_for(50ms);  // the worker took the blocking job
    auto queued = spawn([&pool] { offload(pool, [] {}); });
    this_fiber::sleep_for(20ms);  // the second job waits in the queue (capacity 1)
    try {
      offload(pool, [] {});
    } catch (const Unavailable&) {
      refused = true;
    }
    *release = true;
    blocker.join();
    queued.join();
  });
  EXPECT_EQ(error, "bad job");
  EXPECT_TRUE(refused);
}

TEST(Offload, DeadlineStopsTheWaitNotTheJob) {
  std::atomic<bool> job_done{false};
  bool timed_out = false;
  {
    OffloadPool pool(1, 4);
    run_fiber([&] {
      try {
        offload(
            pool,
            [&] {
              std::this_thread::sleep_for(200ms);
              job_done = true;
            },
            Clock::now() + 20ms);
      } catch (const Timeout&) {
        timed_out = true;
      }
    });
    EXPECT_TRUE(timed_out);
  }  // the pool joins its thread: the job ran to its end, its wake was dropped
  EXPECT_TRUE(job_done);
}

// A tiny echo server on a plain thread: accepts one connection, echoes lines.
class EchoServer {
 public:
  EchoServer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 4) != 0)
      throw std::runtime_error("echo server: bind/listen failed");
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      int c = ::accept(listen_fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      for (;;) {
        auto n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        if (::write(c, buf, static_cast<std::size_t>(n)) != n) break;
      }
      ::close(c);
    });
  }
  ~EchoServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }

 private:
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

TEST(TcpStream, EchoRoundTripWithLinesAndExactReads) {
  EchoServer server;
  std::string line;
  std::string exact(5, '\0');
  run_fiber([&] {
    auto stream = TcpStream::connect("127.0.0.1", server.port(), Clock::now() + 5s);
    stream.write_all("hello\nworld", Clock::now() + 5s);
    line = stream.read_until("\n", 1024, Clock::now() + 5s);
    stream.read_exact(exact, Clock::now() + 5s);
  });
  EXPECT_EQ(line, "hello\n");
  EXPECT_EQ(exact, "world");
}

TEST(TcpStream, RefusedIsUnavailableAndSilenceIsATimeout) {
  auto port = static_cast<std::uint16_t>(testing::free_tcp_port());
  bool refused = false;
  bool timed_out = false;
  EchoServer server;
  run_fiber([&] {
    try {
      TcpStream::connect("127.0.0.1", port, Clock::now() + 5s);
    } catch (const Unavailable&) {
      refused = true;
    }
    auto stream = TcpStream::connect("127.0.0.1", server.port(), Clock::now() + 5s);
    char buf[8];
    try {
      stream.read_some(buf, Clock::now() + 20ms);  // the echo server says nothing first
    } catch (const Timeout&) {
      timed_out = true;
    }
  });
  EXPECT_TRUE(refused);
  EXPECT_TRUE(timed_out);
}

}  // namespace
}  // namespace brubeck
