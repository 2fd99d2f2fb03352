#include "daemon/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "daemon/log.h"
#include "daemon/session_manager.h"

namespace ei {

namespace asio = boost::asio;
using asio::local::stream_protocol;

namespace {

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

void Server::Accept() {
  acceptor_.async_accept(io_, [this](const boost::system::error_code& error,
                                     stream_protocol::socket socket) {
    if (error == asio::error::operation_aborted) return;
    if (error) {
      log::Warning(std::string("accept failed: ") + error.message());
    } else {
      const std::uint64_t id = next_connection_id_++;
      log::Info("connection opened: connection " + std::to_string(id));
      auto session = std::make_shared<Session>(std::move(socket), context_, id);
      context_.sessions->Add(session);
      session->Start();
    }
    if (acceptor_.is_open()) Accept();
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
