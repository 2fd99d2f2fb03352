// Listens on the Unix socket and hands each connection to a new Session.
#pragma once

#include <cstdint>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "daemon/session.h"

namespace ei {

class Server {
 public:
  Server(boost::asio::io_context& io, DaemonContext& context);

  /// Creates the socket file (owner-only) and listens. Replaces a stale file
  /// from a dead daemon; refuses when another daemon answers there.
  /// Returns an empty string, or why it could not.
  std::string Listen(const std::string& path);

  /// Stops accepting and removes the socket file this server created.
  void Stop();

 private:
  void Accept();

  boost::asio::io_context& io_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  DaemonContext& context_;
  std::string path_;
  std::uint64_t next_connection_id_ = 1;
};

}  // namespace ei
