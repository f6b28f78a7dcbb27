// Loopback networking for tests: free ports and whole-stream TCP reads (the router's
// monitor port answers once and closes). Only 127.0.0.1 is ever used.
#pragma once

#include <chrono>
#include <string>

namespace pgrouter::test {

constexpr const char* kLoopback = "127.0.0.1";

// A TCP port that was free on 127.0.0.1 a moment ago (bind port 0, read it, close). Never
// returns the same port twice in one process. The caller must still retry when a server
// fails to bind it, since another process may take it in between.
int free_port();

// True when something accepts TCP connections on 127.0.0.1:port.
bool port_open(int port);

// Connects to 127.0.0.1:port, writes request (if any), reads until EOF. Throws
// std::runtime_error when the connection fails or deadline passes before EOF.
std::string read_tcp(int port, const std::string& request = "",
                     std::chrono::milliseconds deadline = std::chrono::seconds(10));

}  // namespace pgrouter::test
