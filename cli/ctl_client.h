// A blocking client for extrainterpretersctl: connect, hello, one request.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

namespace ei::ctl {

class CtlClient {
 public:
  CtlClient() = default;
  ~CtlClient();
  CtlClient(const CtlClient&) = delete;
  CtlClient& operator=(const CtlClient&) = delete;

  /// Connects and says hello. Empty string, or why not, naming the path:
  /// "cannot connect to PATH (no daemon is listening)".
  std::string Connect(const std::string& path, std::chrono::milliseconds timeout);

  /// Sends a request of `type` and waits for its reply. Empty string, or why
  /// the request failed.
  std::string Request(const std::string& type, nlohmann::json* reply);

 private:
  std::string Send(const nlohmann::json& header);
  std::string Receive(nlohmann::json* header);

  int fd_ = -1;
  std::string path_;
  std::uint64_t next_id_ = 1;
};

}  // namespace ei::ctl
