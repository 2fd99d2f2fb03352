// The --help text: every flag, with its default and what it does.
#include "daemon/app/config.h"

namespace ei {

std::string UsageText() {
  return R"(Usage: extrainterpretersd [FLAGS]

Runs Python jobs sent over a Unix socket in a warm pool of CPython
sub-interpreters, each with its own GIL. Stays in the foreground and logs one
line per event to stderr; stop it with SIGTERM or SIGINT, reload the --config
file with SIGHUP (workers, idle_spin_us, allow_users and allow_groups change
at once; the rest is logged as needing a restart). Under systemd it takes its socket from
socket activation and speaks the notify protocol (docs/operations.md).

Flags (each also a key of the --config file, with _ for -; flags win):
  --socket PATH            Unix socket to listen on. Default:
                           $EXTRAINTERPRETERS_SOCKET, else
                           $XDG_RUNTIME_DIR/extrainterpreters/ei.sock, else
                           /run/extrainterpreters/ei.sock.
  --workers N              Pool interpreters (one OS thread each) that run
                           jobs sent without a lease. Default: number of CPUs.
  --max-interpreters N     Pool interpreters plus leased ones, at most.
                           Default: 4 x workers.
  --preload MOD[,MOD...]   Modules imported in every interpreter when it is
                           created, before it takes jobs. A module that fails
                           to import stops the daemon at start.
  --buffer-size BYTES      Initial shared buffer per interpreter; it grows on
                           demand up to --max-frame-bytes. Default: 10M.
  --max-frame-bytes BYTES  Largest frame accepted or sent (prefix, header and
                           payload). Default: 256M.
  --max-header-bytes BYTES Largest JSON header accepted. Default: 64k.
  --python-path DIR[:DIR]  Directories put first on sys.path of every
                           interpreter, so jobs can import their modules.
  --cancel-grace SECONDS   How long a cancelled or timed-out job may take to
                           stop before its interpreter is retired and
                           replaced. Default: 5.
  --max-jobs-per-interpreter N
                           Replace a pool interpreter with a fresh one after
                           it ran N jobs. Default: 0 (never).
  --idle-spin-us N         A worker with no job to run, and the I/O thread
                           with no request to read, spin (yielding their
                           CPU) this many microseconds before they sleep, so
                           that a request sent meanwhile is read and its job
                           started without a thread wake-up: a shorter round
                           trip, paid for with up to N us of CPU after a job
                           when no other follows. Default: 200; 0: sleep at
                           once.
  --max-definitions N      Functions shipped by value that one connection
                           may define. Default: 4096.
  --allow-users U[,U...]   Users (names or uids) who may connect, besides
                           root and the daemon's own user. Default: none.
  --allow-groups G[,G...]  Groups (names or gids) whose members may connect;
                           a user's supplementary groups count. Default: none.
                           Anyone else gets an access_denied error and is
                           disconnected before a byte is read.

The process lane (worker processes that embed CPython and run jobs in their
main interpreter, for libraries that refuse sub-interpreters; README.md):
  --process-workers N      Worker processes started warm. Default: 1.
  --max-process-workers N  Pool worker processes at most (more start while
                           jobs wait), and leased ones at most. Default:
                           number of CPUs (at least --process-workers).
  --process-modules MOD[,MOD...]
                           Jobs whose function or arguments come from these
                           top-level modules run in the process lane, and
                           sub-interpreters refuse to import them. +MOD adds
                           to the default list, "" clears it. Default:
                           numpy, pandas, scipy, sklearn, torch, tensorflow,
                           jax, jaxlib, matplotlib, PIL, cv2, pyarrow, polars,
                           numba, h5py, lxml, pydantic_core, orjson,
                           cryptography, psycopg2, psutil.
  --process-rerun BOOL     A job that raised CPython's "does not support
                           loading in subinterpreters" ImportError runs again,
                           from the start, in the process lane. Default: true.
  --max-jobs-per-process-worker N
                           Replace a pool worker process after it ran N
                           jobs. Default: 0 (never).
  --process-worker-idle SECONDS
                           A worker process started past --process-workers
                           ends after this long without a job, so the lane
                           shrinks back after a burst. Default: 60; 0: never.
  --preload and --python-path apply to worker processes too (a preloaded
  module of --process-modules is imported only there).

Limits (past each, the client gets an error frame; docs/operations.md):
  --max-connections N      Open client connections, at most; one more gets a
                           busy error and is closed. Lowered at start to fit
                           RLIMIT_NOFILE, keeping descriptors in reserve for
                           interpreters and shared memory. Default: 1024.
  --max-jobs-per-connection N
                           Jobs in flight (queued or running) on one
                           connection; a run past it gets a busy error.
                           Default: 10000.
  --max-queue-depth N      Jobs queued and not yet started, pool and leases
                           together; a run past it gets a busy error.
                           Default: 100000.
  --frame-deadline SECONDS A started frame must finish arriving within this;
                           else too_slow and the connection is closed.
                           Default: 30.
  --idle-timeout SECONDS   Close a connection after this long with no frame
                           and no job in flight. Default: 0 (never).
  --max-output-buffer BYTES
                           Replies waiting for a client that does not read
                           them, besides the one being written; past it the
                           client is dropped. A reply is always taken when
                           none waits, however large. Default: 64M.
  --max-queues N           Queues (named and anonymous) the daemon holds;
                           one more gets queue_limit. Default: 1024.
  --max-queue-items N      Items one queue holds; a queue's maxsize of 0
                           means this. Past it a put waits or gets
                           queue_full, as the caller chose. Default: 100000.
  --max-queue-bytes BYTES  Bytes of pickled items one queue holds; past it,
                           as for max-queue-items. Default: 256M.
  --config FILE            JSON object with any of the keys: socket, workers,
                           max_interpreters, preload (list or "a,b"),
                           buffer_size, max_frame_bytes, max_header_bytes,
                           python_path (list or "a:b"), cancel_grace,
                           max_jobs_per_interpreter, max_definitions,
                           allow_users, allow_groups (lists or "a,b"),
                           max_connections, max_jobs_per_connection,
                           max_queue_depth, frame_deadline, idle_timeout,
                           max_output_buffer, max_queues, max_queue_items,
                           max_queue_bytes, process_workers,
                           max_process_workers, process_modules,
                           process_rerun, max_jobs_per_process_worker,
                           process_worker_idle.
  --version                Print the version and the embedded Python, exit.
  -h, --help               Print this help, exit.

BYTES take an optional k, M or G suffix (binary multiples).
)";
}

}  // namespace ei
