// Counters of what happened to jobs, for status. Each event is counted once,
// where it happens.
#pragma once

#include <atomic>
#include <cstdint>

namespace ei {

struct JobTotals {
  std::atomic<std::uint64_t> submitted{0};  // run requests accepted
  std::atomic<std::uint64_t> completed{0};  // returned a value
  std::atomic<std::uint64_t> failed{0};     // raised, or answered with an error
  std::atomic<std::uint64_t> dropped{0};    // never ran: their connection closed
  std::atomic<std::uint64_t> cancelled{0};  // stopped by cancel (also failed)
  std::atomic<std::uint64_t> timeouts{0};   // stopped by their timeout (also failed)
  std::atomic<std::uint64_t> retired_stuck{0};     // interpreters given up
  std::atomic<std::uint64_t> retired_recycled{0};  // replaced after max jobs
  std::atomic<std::uint64_t> retired_threads{0};   // a job left threads running
  // Lanes (daemon/routing/): jobs each lane was given (a job handed from
  // the interpreter lane to the process lane counts in both), and why the
  // daemon chose the process lane for jobs that left it the choice.
  std::atomic<std::uint64_t> lane_interpreter{0};
  std::atomic<std::uint64_t> lane_process{0};
  std::atomic<std::uint64_t> routed_module{0};      // it names a --process-modules module
  std::atomic<std::uint64_t> routed_load{0};        // a sub-interpreter refused to load it
  std::atomic<std::uint64_t> routed_run{0};         // it raised the refusal: run again
  std::atomic<std::uint64_t> routed_remembered{0};  // its function needed the process lane before
  std::atomic<std::uint64_t> worker_crashes{0};     // process workers that died in a job
};

}  // namespace ei
