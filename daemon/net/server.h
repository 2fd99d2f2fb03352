// Listens on the Unix socket and hands each connection to a new Session,
// once its peer passed the access check.
#pragma once

#include <sys/types.h>

#include <utility>

#include <cstdint>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/net/access_control.h"
#include "daemon/net/session.h"

namespace ei {

/// How many connections fit the process's descriptor limit (RLIMIT_NOFILE,
/// raised to its hard limit first) with `reserve` descriptors kept for
/// interpreters, shared memory and the listening socket: at most `wanted`.
/// Logs when that is fewer than `wanted`.
std::size_t FitConnections(std::size_t wanted, std::size_t reserve);

class Server {
 public:
  Server(boost::asio::io_context& io, DaemonContext& context);

  /// Creates the socket file (owner-only) and listens. Replaces a stale file
  /// from a dead daemon; refuses when another daemon answers there.
  /// Returns an empty string, or why it could not.
  std::string Listen(const std::string& path);

  /// Accepts on a socket that is already listening (socket activation).
  /// Its file belongs to the service manager: Stop never removes it.
  std::string Adopt(int fd, const std::string& path);

  /// Stops accepting and removes the socket file this server created.
  void Stop();

  /// Who may connect from now on; open connections are not rechecked.
  void SetAccessPolicy(AccessPolicy policy) { access_ = std::move(policy); }

 private:
  void Accept();
  void OnAcceptFailed(const boost::system::error_code& error);
  void OnAccepted(boost::asio::local::stream_protocol::socket socket);
  void Refuse(boost::asio::local::stream_protocol::socket socket, std::uint64_t id,
              const char* code, const std::string& why);

  boost::asio::io_context& io_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  DaemonContext& context_;
  AccessPolicy access_;
  std::string path_;         // the socket file, when this server created it
  std::pair<dev_t, ino_t> socket_file_{};  // which file that was
  std::uint64_t next_connection_id_ = 1;
  boost::asio::steady_timer accept_pause_;  // after accept failed (EMFILE)
  bool accept_failing_ = false;             // logged once per run of failures
};

}  // namespace ei
