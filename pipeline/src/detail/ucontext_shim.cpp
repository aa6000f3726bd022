// Debian builds libboost_context with the fcontext backend only, so a
// sanitizer build (BOOST_USE_UCONTEXT, needed for clean ASan reports) lacks
// the three ucontext definitions Boost keeps in its src/fiber.cpp. These
// mirror them: one thread-local main record per thread.
#include <boost/context/fiber.hpp>

namespace boost::context::detail {

namespace {
thread_local fiber_activation_record* fib_current_rec = nullptr;
thread_local std::size_t counter = 0;
}  // namespace

fiber_activation_record_initializer::fiber_activation_record_initializer() noexcept {
  if (counter++ == 0) fib_current_rec = new fiber_activation_record();
}

fiber_activation_record_initializer::~fiber_activation_record_initializer() {
  if (--counter == 0) {
    delete fib_current_rec;
    fib_current_rec = nullptr;
  }
}

fiber_activation_record*& fiber_activation_record::current() noexcept {
  thread_local static fiber_activation_record_initializer initializer;
  return fib_current_rec;
}

}  // namespace boost::context::detail
