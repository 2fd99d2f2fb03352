// The physical limits the benchmark compares extrainterpreters against: what
// two processes can do over a Unix stream socket with no protocol at all,
// and how fast this machine copies memory.
//
//   raw_socket_pingpong pingpong [--iterations N] [--size B] [--warmup N]
//                                [--cross-cpu 1]
//       request/response latency: the parent writes B bytes, the child reads
//       them and writes B bytes back; one sample per exchange. With
//       --cross-cpu 1 the parent is pinned to CPU 0 and the child to CPU 1,
//       so every wake-up crosses CPUs (as a daemon's thread hops may).
//   raw_socket_pingpong bulk [--bytes B] [--repeats N]
//       bandwidth: the parent writes B bytes, the child reads them all and
//       answers one byte; one sample per transfer.
//   raw_socket_pingpong memcpy [--bytes B] [--repeats N]
//       memcpy bandwidth between two pre-faulted buffers of B bytes.
//
// The socket is a socketpair(AF_UNIX, SOCK_STREAM) shared by fork(): two
// processes, blocking reads and writes, default buffer sizes. Each mode
// prints one JSON object on stdout: a summary of its samples (latency in
// microseconds, bandwidth in MB/s with MB = 10^6 bytes).
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string mode;
  long iterations = 20000;
  long warmup = 1000;
  long size = 64;
  long bytes = 64L * 1024 * 1024;
  long repeats = 5;
  long cross_cpu = 0;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "raw_socket_pingpong: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr,
               "raw_socket_pingpong: %s\n"
               "usage: raw_socket_pingpong pingpong|bulk|memcpy [--iterations N] [--warmup N]\n"
               "                           [--size BYTES] [--bytes BYTES] [--repeats N]\n"
               "                           [--cross-cpu 0|1]\n",
               why.c_str());
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  if (argc < 2) Usage("no mode given");
  Options options;
  options.mode = argv[1];
  for (int i = 2; i < argc; i += 2) {
    std::string flag = argv[i];
    if (i + 1 >= argc) Usage(flag + " needs a value");
    char* end = nullptr;
    long value = std::strtol(argv[i + 1], &end, 10);
    if (*end != '\0' || value < 0) Usage("bad value for " + flag);
    if (flag == "--iterations") options.iterations = value;
    else if (flag == "--warmup") options.warmup = value;
    else if (flag == "--size") options.size = value;
    else if (flag == "--bytes") options.bytes = value;
    else if (flag == "--repeats") options.repeats = value;
    else if (flag == "--cross-cpu") options.cross_cpu = value;
    else Usage("unknown flag " + flag);
  }
  if (options.size < 1 || options.bytes < 1 || options.iterations < 1 || options.repeats < 1) {
    Usage("sizes, iterations and repeats must be at least 1");
  }
  return options;
}

void WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Die("write");
    data += n;
    size -= static_cast<size_t>(n);
  }
}

// Returns false on a clean end of stream before the first byte.
bool ReadAll(int fd, char* data, size_t size) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = read(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Die("read");
    if (n == 0) {
      if (done == 0) return false;
      errno = EPIPE;
      Die("read (stream ended mid-message)");
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

// The echo side of pingpong: answers every `size`-byte message in kind.
void EchoChild(int fd, size_t size) {
  std::vector<char> buffer(size);
  while (ReadAll(fd, buffer.data(), size)) WriteAll(fd, buffer.data(), size);
}

// The sink side of bulk: reads `bytes` bytes, answers one byte, repeats.
void SinkChild(int fd, size_t bytes) {
  std::vector<char> buffer(1 << 20);
  char ack = 'k';
  for (;;) {
    size_t left = bytes;
    while (left > 0) {
      size_t chunk = std::min(left, buffer.size());
      if (!ReadAll(fd, buffer.data(), chunk)) return;
      left -= chunk;
    }
    WriteAll(fd, &ack, 1);
  }
}

// Forks a child running `child(fd)` on one end of a socketpair; returns the
// parent's end and the child's pid.
template <typename Child>
int ForkPeer(Child child, pid_t* pid) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) Die("socketpair");
  *pid = fork();
  if (*pid < 0) Die("fork");
  if (*pid == 0) {
    close(fds[0]);
    child(fds[1]);
    _exit(0);
  }
  close(fds[1]);
  return fds[0];
}

void Reap(int fd, pid_t pid) {
  close(fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

double Percentile(const std::vector<double>& sorted, double p) {
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size()));
  return sorted[std::min(rank, sorted.size() - 1)];
}

// One JSON object summarising `samples` in `unit`.
void PrintSummary(const Options& options, const char* unit, std::vector<double> samples,
                  const std::string& extra) {
  std::sort(samples.begin(), samples.end());
  std::printf(
      "{\"mode\": \"%s\", \"unit\": \"%s\", \"n\": %zu, \"min\": %.3f, \"p10\": %.3f, "
      "\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f%s}\n",
      options.mode.c_str(), unit, samples.size(), samples.front(), Percentile(samples, 10),
      Percentile(samples, 50), Percentile(samples, 90), Percentile(samples, 99), samples.back(),
      extra.c_str());
}

double Seconds(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double>(end - start).count();
}

void PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) Die("sched_setaffinity");
}

void PingPong(const Options& options) {
  size_t size = static_cast<size_t>(options.size);
  bool cross = options.cross_cpu != 0;
  pid_t pid;
  int fd = ForkPeer(
      [size, cross](int child_fd) {
        if (cross) PinTo(1);
        EchoChild(child_fd, size);
      },
      &pid);
  if (cross) PinTo(0);
  std::vector<char> out(size, 'x'), in(size);
  std::vector<double> samples;
  samples.reserve(static_cast<size_t>(options.iterations));
  for (long i = 0; i < options.warmup + options.iterations; ++i) {
    auto start = Clock::now();
    WriteAll(fd, out.data(), size);
    if (!ReadAll(fd, in.data(), size)) Die("read (echo child ended)");
    auto end = Clock::now();
    if (i >= options.warmup) samples.push_back(Seconds(start, end) * 1e6);
  }
  Reap(fd, pid);
  PrintSummary(options, "us", samples,
               ", \"size\": " + std::to_string(size) +
                   ", \"cross_cpu\": " + (cross ? "true" : "false"));
}

void Bulk(const Options& options) {
  size_t bytes = static_cast<size_t>(options.bytes);
  pid_t pid;
  int fd = ForkPeer([bytes](int child_fd) { SinkChild(child_fd, bytes); }, &pid);
  std::vector<char> data(bytes, 'x');
  std::vector<double> samples;
  char ack = 0;
  for (long i = 0; i <= options.repeats; ++i) {  // The first one warms up.
    auto start = Clock::now();
    WriteAll(fd, data.data(), bytes);
    if (!ReadAll(fd, &ack, 1)) Die("read (sink child ended)");
    auto end = Clock::now();
    if (i > 0) samples.push_back(static_cast<double>(bytes) / Seconds(start, end) / 1e6);
  }
  Reap(fd, pid);
  PrintSummary(options, "MB/s", samples, ", \"bytes\": " + std::to_string(bytes));
}

void Memcpy(const Options& options) {
  size_t bytes = static_cast<size_t>(options.bytes);
  std::vector<char> from(bytes, 'x'), to(bytes, 'y');  // Pre-faulted.
  std::vector<double> samples;
  volatile char sink = 0;
  for (long i = 0; i <= options.repeats; ++i) {
    from[static_cast<size_t>(i) % bytes] = static_cast<char>(i);
    auto start = Clock::now();
    std::memcpy(to.data(), from.data(), bytes);
    auto end = Clock::now();
    sink = sink + to[static_cast<size_t>(i) % bytes];  // Keeps the copy.
    if (i > 0) samples.push_back(static_cast<double>(bytes) / Seconds(start, end) / 1e6);
  }
  PrintSummary(options, "MB/s", samples, ", \"bytes\": " + std::to_string(bytes));
}

}  // namespace

int main(int argc, char** argv) {
  Options options = Parse(argc, argv);
  if (options.mode == "pingpong") PingPong(options);
  else if (options.mode == "bulk") Bulk(options);
  else if (options.mode == "memcpy") Memcpy(options);
  else Usage("unknown mode " + options.mode);
  return 0;
}
