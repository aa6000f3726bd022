// A server shared by a whole test suite (started in SetUpTestSuite).
//
// gtest 1.12 turns an exception or a failure inside SetUpTestSuite into
// "[  SKIPPED ]" for every test of the suite, and ctest counts skipped tests
// as passed: a Redis or PostgreSQL that cannot start would turn a suite
// green. So the start-up error is kept here, and every test's SetUp fails
// with it:
//
//   static void SetUpTestSuite() { server_ = start_shared<RedisServer>(error_); }
//   void SetUp() override { ASSERT_TRUE(server_) << error_; }
#pragma once

#include <exception>
#include <memory>
#include <string>

namespace brubeck::testing {

template <class Server>
std::unique_ptr<Server> start_shared(std::string& error) {
  try {
    error.clear();
    return std::make_unique<Server>();
  } catch (const std::exception& e) {
    error = std::string("the shared server did not start: ") + e.what();
  } catch (...) {
    error = "the shared server did not start (unknown exception)";
  }
  return nullptr;
}

}  // namespace brubeck::testing
