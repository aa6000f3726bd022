// ZmqSocket from fibers of a real reactor: against a ROUTER echo service on
// a plain thread, and between two fibers of the same shard.
#include "brubeck/drivers/zmq_socket.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <zmq_addon.hpp>

#include "brubeck/pipeline/reactor.hpp"
#include "brubeck/pipeline/spawn.hpp"
#include "support/fiber_runner.hpp"
#include "support/process.hpp"

namespace brubeck {
namespace {

using namespace std::chrono_literals;
using testing::run_fiber;

// A ROUTER on its own thread that sends every message back to its sender,
// until stopped (it polls in short slices, so it stops promptly).
class EchoService {
 public:
  explicit EchoService(zmq::context_t& ctx) : router_(ctx, zmq::socket_type::router) {
    router_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:*");
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { loop(); });
  }
  ~EchoService() {
    stop_ = true;
    thread_.join();
  }
  EchoService(const EchoService&) = delete;
  EchoService& operator=(const EchoService&) = delete;

  const std::string& endpoint() const { return endpoint_; }
  int echoed() const { return echoed_.load(); }

 private:
  void loop() {
    while (!stop_) {
      zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(20)) == 0) continue;
      std::vector<zmq::message_t> parts;
      if (!zmq::recv_multipart(router_, std::back_inserter(parts), zmq::recv_flags::dontwait))
        continue;
      zmq::send_multipart(router_, parts);
      ++echoed_;
    }
    router_.close();  // on the thread that used it
  }

  zmq::socket_t router_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::atomic<int> echoed_{0};
  std::thread thread_;
};

TEST(ZmqSocket, DealerRoundTripsMultipartMessages) {
  zmq::context_t ctx;
  EchoService echo(ctx);
  run_fiber([&] {
    ZmqSocket dealer(ctx, zmq::socket_type::dealer);
    dealer.raw().set(zmq::sockopt::linger, 0);
    dealer.connect(echo.endpoint());
    for (int i = 0; i < 50; ++i) {
      std::vector<std::string> msg{"part-" + std::to_string(i), "", std::string(i * 100, 'x')};
      dealer.send(msg, Clock::now() + 5s);
      EXPECT_EQ(dealer.recv(Clock::now() + 5s), msg);
    }
    // Several in flight at once, answered in order.
    for (int i = 0; i < 20; ++i) dealer.send({"burst", std::to_string(i)}, Clock::now() + 5s);
    for (int i = 0; i < 20; ++i)
      EXPECT_EQ(dealer.recv(Clock::now() + 5s),
                (std::vector<std::string>{"burst", std::to_string(i)}));
  });
  EXPECT_EQ(echo.echoed(), 70);
}

TEST(ZmqSocket, RecvTimesOutWithoutAPeerWhileOthersRun) {
  zmq::context_t ctx;
  int port = testing::free_tcp_port();
  run_fiber([&] {
    int ticks = 0;
    bool done = false;
    auto ticker = spawn([&] {
      while (!done) {
        this_fiber::sleep_for(10ms);
        ++ticks;
      }
    });
    ZmqSocket dealer(ctx, zmq::socket_type::dealer);
    dealer.raw().set(zmq::sockopt::linger, 0);
    dealer.connect("tcp://127.0.0.1:" + std::to_string(port));
    auto start = Clock::now();
    EXPECT_THROW(dealer.recv(Clock::now() + 200ms), Timeout);
    auto took = Clock::now() - start;
    EXPECT_GE(took, 150ms);
    EXPECT_LT(took, 2s);

    // No peer at all: a DEALER's send waits too, and times out the same way.
    ZmqSocket lonely(ctx, zmq::socket_type::dealer);
    lonely.raw().set(zmq::sockopt::linger, 0);
    start = Clock::now();
    EXPECT_THROW(lonely.send({"nobody"}, Clock::now() + 100ms), Timeout);
    EXPECT_LT(Clock::now() - start, 2s);
    done = true;
    ticker.join();
    EXPECT_GE(ticks, 5) << "the shard kept running other fibers during the waits";
  });
}

TEST(ZmqSocket, FiberDeadlineThrowsDeadlineExceeded) {
  zmq::context_t ctx;
  run_fiber([&] {
    auto call = spawn([&] {
      ZmqSocket pair(ctx, zmq::socket_type::pair);
      pair.raw().set(zmq::sockopt::linger, 0);
      pair.bind("inproc://deadline");
      auto* hub = FiberHub::current();
      hub->set_deadline(hub->self(), Clock::now() + 100ms);
      pair.recv(Clock::now() + 10s);
    });
    EXPECT_THROW(call.join(), DeadlineExceeded);
  });
}

TEST(ZmqSocket, TwoFibersOfOneShardExchangeAHundredMessages) {
  zmq::context_t ctx;
  run_fiber([&] {
    ZmqSocket a(ctx, zmq::socket_type::pair);
    ZmqSocket b(ctx, zmq::socket_type::pair);
    for (auto* s : {&a, &b}) {
      // Tiny queues: the sender must wait for the receiver again and again.
      s->raw().set(zmq::sockopt::sndhwm, 2);
      s->raw().set(zmq::sockopt::rcvhwm, 2);
      s->raw().set(zmq::sockopt::linger, 0);
    }
    a.bind("inproc://two-fibers");
    b.connect("inproc://two-fibers");
    int sent = 0;
    int sent_when_first_received = -1;
    int max_ahead = 0;
    auto sender = spawn([&] {
      for (int i = 0; i < 100; ++i) {
        a.send({std::to_string(i), std::string(1000, 'm')}, Clock::now() + 10s);
        ++sent;
      }
    });
    auto receiver = spawn([&] {
      for (int i = 0; i < 100; ++i) {
        auto msg = b.recv(Clock::now() + 10s);
        if (i == 0) sent_when_first_received = sent;
        max_ahead = std::max(max_ahead, sent - i);
        ASSERT_EQ(msg.size(), 2u);
        EXPECT_EQ(msg[0], std::to_string(i));
        EXPECT_EQ(msg[1].size(), 1000u);
      }
    });
    sender.join();
    receiver.join();
    EXPECT_EQ(sent, 100);
    EXPECT_LT(sent_when_first_received, 100) << "the sender waited at the high-water mark";
    EXPECT_LT(max_ahead, 100);
  });
}

TEST(ZmqSocket, DefaultContextIsShared) {
  EXPECT_EQ(&ZmqSocket::default_context(), &ZmqSocket::default_context());
  run_fiber([&] {
    ZmqSocket a(ZmqSocket::default_context(), zmq::socket_type::pair);
    ZmqSocket b(ZmqSocket::default_context(), zmq::socket_type::pair);
    a.bind("inproc://default-context");
    b.connect("inproc://default-context");
    b.send({"x", "y"}, Clock::now() + 5s);
    EXPECT_EQ(a.recv(Clock::now() + 5s), (std::vector<std::string>{"x", "y"}));
  });
}

TEST(ZmqSocket, OutsideAFiberIsALogicError) {
  zmq::context_t ctx;
  ZmqSocket s(ctx, zmq::socket_type::pair);
  s.raw().set(zmq::sockopt::linger, 0);
  s.bind("inproc://outside");
  EXPECT_THROW(s.recv(), std::logic_error);
}

}  // namespace
}  // namespace brubeck
