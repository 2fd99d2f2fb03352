// A process lane worker's whole life, in the worker process: extrainterpretersd
// started as `extrainterpretersd --process-worker <spec>` by the daemon
// (spawn.h). It embeds CPython and runs jobs in its main interpreter, so
// every extension module loads; a crash ends only this process.
#pragma once

namespace ei {

/// Runs the worker described by the JSON `spec` (WorkerSpec::ToJson) on the
/// link at descriptor 3 until the daemon closes it. Returns the process's
/// exit status.
int RunProcessWorker(const char* spec);

}  // namespace ei
