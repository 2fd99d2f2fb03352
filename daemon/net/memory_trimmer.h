// Keeps memory freed after large transfers warm for the next one, and gives
// it back to the kernel once large transfers stop.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace ei {

/// A job's 64 MiB argument is a `bytes` that its interpreter allocates and
/// frees. By default glibc maps each such block afresh and unmaps it when it
/// is freed, so every transfer pays a page fault per 4 KiB (about 30 ms for
/// 64 MiB here, three times the copy itself). ConfigureAllocator makes glibc
/// keep freed blocks in one heap instead; this class gives that memory back
/// (malloc_trim) once large transfers stop.
class MemoryTrimmer {
 public:
  /// Large blocks come from one heap (one arena, no per-block mmap) and up to
  /// `keep_bytes` freed at its top stay there. Call before any thread starts.
  static void ConfigureAllocator(std::size_t keep_bytes);

  /// Data of at least this many bytes counts as large.
  static constexpr std::size_t kLargeBytes = 1 << 20;

  MemoryTrimmer(boost::asio::io_context& io, std::chrono::milliseconds idle);
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

  /// Any thread: large data just moved. Free memory is trimmed once none
  /// has moved for `idle`.
  void NoteLarge();

  /// Any thread: gives free heap memory back to the kernel now (a client
  /// that moved large data went away).
  void TrimNow();

  /// I/O thread: no more timers (shutdown), so the I/O loop can end.
  void Stop();

 private:
  void Arm(std::chrono::steady_clock::duration after);  // I/O thread
  void OnTimer(const boost::system::error_code& error);  // I/O thread

  boost::asio::io_context& io_;
  const std::chrono::milliseconds idle_;
  boost::asio::steady_timer timer_;  // I/O thread only
  bool stopped_ = false;              // I/O thread only
  std::atomic<bool> armed_{false};
  std::atomic<std::chrono::steady_clock::rep> last_large_{0};
};

}  // namespace ei
