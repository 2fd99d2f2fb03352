#include "daemon/net/server.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "daemon/base/log.h"
#include "daemon/net/job_reply.h"
#include "daemon/net/session_manager.h"
#include "proto/frame_codec.h"

namespace ei {

namespace asio = boost::asio;
using asio::local::stream_protocol;

namespace {

// How long a refused connection stays open after its error frame.
constexpr std::chrono::milliseconds kRefusalLinger{500};

// How long accepting pauses after it failed (EMFILE, ENFILE, ...): the
// pending connection keeps the listening socket readable, so retrying at
// once would spin.
constexpr std::chrono::milliseconds kAcceptPause{100};

// True when a daemon accepts connections at `path` right now.
bool SomeoneListens(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return connected;
}

// Makes the socket's directory if it is missing (owner-only, one level).
std::string EnsureDirectory(const std::string& path) {
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty() || std::filesystem::exists(dir)) return "";
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return "cannot create directory " + dir.string() + " (" + std::strerror(errno) + ")";
  }
  return "";
}

// Removes a socket file nobody listens on; refuses anything else.
std::string ClearStale(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return "";
  if (!S_ISSOCK(st.st_mode)) return path + " exists and is not a socket; not replacing it";
  if (SomeoneListens(path)) {
    return "another extrainterpretersd is already running on " + path;
  }
  if (::unlink(path.c_str()) != 0) {
    return "cannot remove stale socket " + path + " (" + std::strerror(errno) + ")";
  }
  log::Info("stale socket removed: " + path + " (no daemon answered on it)");
  return "";
}

}  // namespace

std::size_t FitConnections(std::size_t wanted, std::size_t reserve) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return wanted;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur == RLIM_INFINITY) return wanted;
  const std::size_t fits = limit.rlim_cur > reserve + 1 ? limit.rlim_cur - reserve : 1;
  if (fits >= wanted) return wanted;
  log::Warning("starting: max_connections lowered from " + std::to_string(wanted) + " to " +
               std::to_string(fits) + ": RLIMIT_NOFILE is " + std::to_string(limit.rlim_cur) +
               " and " + std::to_string(reserve) + " descriptors are kept in reserve");
  return fits;
}

Server::Server(asio::io_context& io, DaemonContext& context)
    : io_(io), acceptor_(io), context_(context), accept_pause_(io) {}

std::string Server::Listen(const std::string& path) {
  if (std::string why = EnsureDirectory(path); !why.empty()) return why;
  if (std::string why = ClearStale(path); !why.empty()) return why;
  boost::system::error_code error;
  acceptor_.open(stream_protocol(), error);
  // Owner-only from the moment the file exists: no window for others.
  const mode_t old_mask = ::umask(0177);
  if (!error) acceptor_.bind(stream_protocol::endpoint(path), error);
  ::umask(old_mask);
  if (error) return "cannot listen on " + path + " (" + error.message() + ")";
  path_ = path;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) socket_file_ = {st.st_dev, st.st_ino};
  acceptor_.listen(asio::socket_base::max_listen_connections, error);
  if (error) return "cannot listen on " + path + " (" + error.message() + ")";
  Accept();
  return "";
}

std::string Server::Adopt(int fd, const std::string& path) {
  boost::system::error_code error;
  acceptor_.assign(stream_protocol(), fd, error);
  if (error) return "cannot use the socket passed for " + path + " (" + error.message() + ")";
  path_.clear();  // systemd's file: never ours to remove
  Accept();
  return "";
}

void Server::Accept() {
  acceptor_.async_accept(io_, [this](const boost::system::error_code& error,
                                     stream_protocol::socket socket) {
    if (error == asio::error::operation_aborted) return;
    if (error) {
      OnAcceptFailed(error);
      return;
    }
    if (accept_failing_) log::Info("accepting again: connections are accepted");
    accept_failing_ = false;
    OnAccepted(std::move(socket));
    if (acceptor_.is_open()) Accept();
  });
}

// Out of descriptors (EMFILE, ENFILE) or another failure: log once, pause,
// try again. Connections wait in the listen backlog meanwhile.
void Server::OnAcceptFailed(const boost::system::error_code& error) {
  if (!accept_failing_) {
    log::Warning("accept failed: " + error.message() + "; pausing accepts, retrying every " +
                 std::to_string(kAcceptPause.count()) + " ms");
    accept_failing_ = true;
  }
  accept_pause_.expires_after(kAcceptPause);
  accept_pause_.async_wait([this](const boost::system::error_code& waited) {
    if (!waited && acceptor_.is_open()) Accept();
  });
}

// The peer is checked before anything is read from it: a refused client's
// bytes, job included, stay unread in the socket until it is closed.
void Server::OnAccepted(stream_protocol::socket socket) {
  const std::uint64_t id = next_connection_id_++;
  std::string why;
  std::optional<PeerCredentials> peer = ReadPeerCredentials(socket.native_handle(), &why);
  if (peer) why = access_.Check(*peer);
  if (!why.empty()) {
    log::Warning(why.rfind("access denied", 0) == 0
                     ? "access denied: connection " + std::to_string(id) + " from uid " +
                           DescribeUid(peer->uid) + " pid " + std::to_string(peer->pid) +
                           " (not in allow_users/allow_groups)"
                     : "access denied: connection " + std::to_string(id) + ": " + why);
    Refuse(std::move(socket), id, "access_denied", why);
    return;
  }
  if (const std::size_t max = context_.connection_limits.max_connections;
      context_.sessions->size() >= max) {
    log::Warning("connection refused: connection " + std::to_string(id) + " from uid " +
                 DescribeUid(peer->uid) + " pid " + std::to_string(peer->pid) + ": " +
                 std::to_string(max) + " connections are open (max_connections)");
    Refuse(std::move(socket), id, "busy",
           "connection refused: " + std::to_string(max) +
               " connections are open (max_connections)");
    return;
  }
  log::Info("connection opened: connection " + std::to_string(id) + " from uid " +
            DescribeUid(peer->uid) + " pid " + std::to_string(peer->pid));
  auto session = std::make_shared<Session>(std::move(socket), context_, id);
  context_.sessions->Add(session);
  session->Start();
}

// One fatal error frame, then close. The frame is small enough for the
// socket buffer, so a client that never reads cannot hold this up. The
// socket stays open (write side shut, nothing read) for kRefusalLinger, so a
// client still sending its hello gets no EPIPE before it reads why.
void Server::Refuse(stream_protocol::socket socket, std::uint64_t id, const char* code,
                    const std::string& why) {
  struct Refusal {
    stream_protocol::socket socket;
    std::string frame;
    asio::steady_timer linger;
  };
  auto refusal = std::make_shared<Refusal>(Refusal{
      std::move(socket),
      proto::EncodeFrame(ErrorHeader(nullptr, code, why, /*fatal=*/true)),
      asio::steady_timer(io_)});
  asio::async_write(refusal->socket, asio::buffer(refusal->frame),
                    [refusal, id, code](const boost::system::error_code& error, std::size_t) {
                      boost::system::error_code ignored;
                      if (error) {
                        log::Info("connection error: connection " + std::to_string(id) +
                                  ": cannot send " + code + ": " + error.message());
                        refusal->socket.close(ignored);
                        return;
                      }
                      refusal->socket.shutdown(stream_protocol::socket::shutdown_send, ignored);
                      refusal->linger.expires_after(kRefusalLinger);
                      refusal->linger.async_wait([refusal](const boost::system::error_code&) {
                        boost::system::error_code ignored;
                        refusal->socket.close(ignored);
                      });
                    });
}

void Server::Stop() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  accept_pause_.cancel();
  // Only the file this server created: another daemon may have replaced a
  // file that vanished from under this one (then it is theirs).
  struct stat st {};
  if (!path_.empty() && ::lstat(path_.c_str(), &st) == 0 &&
      std::make_pair(st.st_dev, st.st_ino) == socket_file_) {
    ::unlink(path_.c_str());
  }
  path_.clear();
}

}  // namespace ei
