#include "daemon/net/memory_trimmer.h"

#include <malloc.h>

#include <algorithm>
#include <climits>

#include <boost/asio/post.hpp>

namespace ei {

using Clock = std::chrono::steady_clock;

void MemoryTrimmer::ConfigureAllocator(std::size_t keep_bytes) {
  // One arena: a thread arena's heap holds at most 64 MiB, so larger blocks
  // would be mapped per block whatever the other settings say.
  ::mallopt(M_ARENA_MAX, 1);
  ::mallopt(M_MMAP_MAX, 0);
  // Fixed, so glibc does not move it; freed memory above it at the top of
  // the heap goes back at once, the rest when TrimNow runs.
  ::mallopt(M_TRIM_THRESHOLD, static_cast<int>(std::min<std::size_t>(keep_bytes, INT_MAX)));
}

MemoryTrimmer::MemoryTrimmer(boost::asio::io_context& io, std::chrono::milliseconds idle)
    : io_(io), idle_(idle), timer_(io) {}

void MemoryTrimmer::NoteLarge() {
  last_large_.store(Clock::now().time_since_epoch().count());
  if (!armed_.exchange(true)) {
    boost::asio::post(io_, [this] { Arm(idle_); });
  }
}

void MemoryTrimmer::TrimNow() { ::malloc_trim(0); }

void MemoryTrimmer::Stop() {
  stopped_ = true;
  timer_.cancel();
}

void MemoryTrimmer::Arm(Clock::duration after) {
  if (stopped_) return;
  timer_.expires_after(after);
  timer_.async_wait([this](const boost::system::error_code& error) { OnTimer(error); });
}

void MemoryTrimmer::OnTimer(const boost::system::error_code& error) {
  if (error) return;  // the I/O loop is stopping
  const Clock::time_point last{Clock::duration(last_large_.load())};
  const Clock::duration quiet = Clock::now() - last;
  if (quiet < idle_) {
    Arm(idle_ - quiet);  // more large data moved since the timer was set
    return;
  }
  armed_.store(false);
  TrimNow();
  // Large data that moved between the load above and the store is trimmed
  // by its own timer, or by the next one.
  if (Clock::time_point{Clock::duration(last_large_.load())} != last && !armed_.exchange(true)) {
    Arm(idle_);
  }
}

}  // namespace ei
