#include "daemon/server.h"

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

#include "daemon/job_reply.h"
#include "daemon/log.h"
#include "daemon/session_manager.h"
#include "proto/frame_codec.h"

namespace ei {

namespace asio = boost::asio;
using asio::local::stream_protocol;

namespace {

// How long a refused connection stays open after its error frame.
constexpr std::chrono::milliseconds kRefusalLinger{500};

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

Server::Server(asio::io_context& io, DaemonContext& context)
    : io_(io), acceptor_(io), context_(context) {}

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
      log::Warning(std::string("accept failed: ") + error.message());
    } else {
      OnAccepted(std::move(socket));
    }
    if (acceptor_.is_open()) Accept();
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
    Refuse(std::move(socket), id, why);
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
void Server::Refuse(stream_protocol::socket socket, std::uint64_t id, const std::string& why) {
  struct Refusal {
    stream_protocol::socket socket;
    std::string frame;
    asio::steady_timer linger;
  };
  auto refusal = std::make_shared<Refusal>(Refusal{
      std::move(socket),
      proto::EncodeFrame(ErrorHeader(nullptr, "access_denied", why, /*fatal=*/true)),
      asio::steady_timer(io_)});
  asio::async_write(refusal->socket, asio::buffer(refusal->frame),
                    [refusal, id](const boost::system::error_code& error, std::size_t) {
                      boost::system::error_code ignored;
                      if (error) {
                        log::Info("connection error: connection " + std::to_string(id) +
                                  ": cannot send access_denied: " + error.message());
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
  if (!path_.empty()) {
    ::unlink(path_.c_str());
    path_.clear();
  }
}

}  // namespace ei
