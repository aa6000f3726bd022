// Waiting on the reactor from fibers: file descriptors, offloaded work and
// TCP streams, on a real epoll loop.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <stop_token>
#include <string>
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

// A job that polls its stop token, as a long computation would: runs until
// stopped, or 30 s. Returns whether it was stopped.
auto polling_job(std::shared_ptr<std::atomic<bool>> stopped) {
  return [stopped](std::stop_token st) {
    auto until = Clock::now() + 30s;
    while (!st.stop_requested() && Clock::now() < until) std::this_thread::sleep_for(1ms);
    *stopped = st.stop_requested();
    return 1;
  };
}

TEST(Offload, AJobPollingItsTokenStopsWhenItsWaitTimesOut) {
  auto stopped = std::make_shared<std::atomic<bool>>(false);
  bool timed_out = false;
  int next = 0;
  auto start = Clock::now();
  {
    OffloadPool pool(1, 4);
    run_fiber([&] {
      try {
        offload(pool, polling_job(stopped), Clock::now() + 100ms);
      } catch (const Timeout&) {
        timed_out = true;
      }
      // The one worker is free again for the next job, long before 30 s.
      next = offload(
          pool, [] { return 7; }, start + 5s);
      // A token the job does not need to look at: the plain form still works.
      EXPECT_EQ(offload(pool, [](std::stop_token st) { return st.stop_requested() ? 0 : 8; }), 8);
    });
  }
  EXPECT_TRUE(timed_out);
  EXPECT_TRUE(*stopped);
  EXPECT_EQ(next, 7);
  EXPECT_LT(Clock::now() - start, 5s) << "the job ran on past its stop request";
}

TEST(Offload, TheRequestDeadlineAndCancellationStopTheJobToo) {
  auto by_deadline = std::make_shared<std::atomic<bool>>(false);
  auto by_cancel = std::make_shared<std::atomic<bool>>(false);
  bool deadline_exceeded = false;
  auto start = Clock::now();
  {
    OffloadPool pool(2, 4);
    run_fiber([&] {
      auto child = spawn([&pool, by_deadline] {
        auto* hub = FiberHub::current();
        hub->set_deadline(hub->self(), Clock::now() + 100ms);
        offload(pool, polling_job(by_deadline));
      });
      try {
        child.join();
      } catch (const DeadlineExceeded&) {
        deadline_exceeded = true;
      }
      {
        // Dropping a child unjoined cancels it while it waits on its job.
        auto doomed = spawn([&pool, by_cancel] { offload(pool, polling_job(by_cancel)); });
        this_fiber::sleep_for(100ms);
      }
      // Both workers are free again.
      auto a = spawn([&pool] {
        return offload(
            pool, [] { return 1; }, Clock::now() + 5s);
      });
      auto b = spawn([&pool] {
        return offload(
            pool, [] { return 2; }, Clock::now() + 5s);
      });
      EXPECT_EQ(a.join() + b.join(), 3);
    });
  }
  EXPECT_TRUE(deadline_exceeded);
  EXPECT_TRUE(*by_deadline);
  EXPECT_TRUE(*by_cancel);
  EXPECT_LT(Clock::now() - start, 5s) << "a job ran on past its stop request";
}

// A job that ignores its token runs to its end on its worker, and its late
// completion neither resumes the fiber that gave up (which has moved on to
// another wait) nor touches a fiber that has ended since (under ASan, a use
// of its freed stack would be reported).
TEST(Offload, AJobIgnoringItsTokenNeverResumesTheFiberThatGaveUp) {
  OffloadPool pool(1, 4);
  // Gives up on a job that ignores its token and outlives the wait.
  auto give_up = [&pool](std::shared_ptr<std::atomic<bool>> finished) {
    bool gave_up = false;
    try {
      offload(
          pool,
          [finished](std::stop_token) {
            std::this_thread::sleep_for(200ms);
            *finished = true;
            return std::string(1000, 'x');
          },
          Clock::now() + 20ms);
    } catch (const Timeout&) {
      gave_up = true;
    }
    EXPECT_TRUE(gave_up);
    EXPECT_FALSE(*finished);
  };
  // Suspends on a new token until the job's completion has been handled on
  // this shard, then is woken by a sibling; fails if anything else woke it.
  auto wait_out = [&pool](std::shared_ptr<std::atomic<bool>> finished) {
    auto* hub = FiberHub::current();
    auto token = hub->prepare_wait();
    bool released = false;
    auto releaser = spawn([&pool, &released, hub, token, finished] {
      while (!*finished) this_fiber::sleep_for(5ms);
      // The pool has one worker and the shard runs completions in order: once
      // this job's completion is handled, the abandoned one's has been too.
      offload(pool, [] {});
      released = true;
      hub->wake(token);
    });
    EXPECT_TRUE(hub->suspend(token, Clock::now() + 20s));
    EXPECT_TRUE(released) << "the abandoned job's completion resumed a later wait";
    releaser.join();
  };
  auto first = std::make_shared<std::atomic<bool>>(false);
  auto second = std::make_shared<std::atomic<bool>>(false);
  run_fiber([&] {
    // The same fiber, waiting on something else by the time the job ends.
    give_up(first);
    wait_out(first);
    // A fiber that has ended by the time the job does; the next fiber likely
    // runs on its record and stack.
    auto ended = spawn([&] { give_up(second); });
    ended.join();
    auto next = spawn([&] { wait_out(second); });
    next.join();
  });
  EXPECT_TRUE(*first);
  EXPECT_TRUE(*second);
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
