// A scripted fake PostgreSQL backend for byte-level session tests: a server on a free
// loopback port, one thread per connection, that stands in for a backend where a real
// server cannot produce the bytes on demand (an error mid-batch, a close after one row,
// answers split at every byte boundary, a bad length). It logs in everyone with trust
// (AuthenticationOk, ParameterStatus, BackendKeyData, ReadyForQuery); then
//  - pgrouter's watcher (application_name "pgrouter watcher") gets canned answers to its
//    health queries: "a master at LSN X" (or a standby at X);
//  - a CancelRequest is recorded and the connection closed;
//  - every other connection (a session's backend connection) plays the next queued script
//    (see fake_script.h), or the fallback one (serve()) when the queue is empty.
// A step that does not get what it expects is recorded as a failure and ends that
// connection: tests check failures() is empty.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fake_script.h"
#include "raw_client.h"

namespace pgrouter::test {

struct FakeOptions {
    bool standby = false;                            // what the watcher is told: in recovery or not
    std::string lsn = "0/3000000";                   // its WAL position (insert or replay)
    std::chrono::milliseconds read_deadline{10000};  // an Expect or Gate step's patience
    // What a session connection gets instead of the trust login ("" = the login above):
    // for login-phase cases. The script runs after it.
    std::string session_hello{};
};

class FakeBackend {
  public:
    explicit FakeBackend(FakeOptions opts = {});
    ~FakeBackend();  // closes every connection and joins every thread
    FakeBackend(const FakeBackend&) = delete;
    FakeBackend& operator=(const FakeBackend&) = delete;

    int port() const { return port_; }
    // The script of the next session connection (queued in order).
    void add_script(fake::Script script);
    // The script of session connections once the queue is empty (initially: serve()).
    void set_fallback(fake::Script script);

    // Session connections accepted so far, and the ones whose script has ended (closed by
    // either side or by a failure).
    int sessions() const;
    int sessions_done() const;
    bool wait_sessions_done(int n, std::chrono::milliseconds deadline = std::chrono::seconds(10));
    int watcher_queries() const { return watcher_queries_.load(); }
    int cancel_requests() const { return cancels_.load(); }
    // The process id and key of the last CancelRequest (0, 0 before any).
    std::pair<std::int32_t, std::int32_t> last_cancel() const;
    // Lets Gate steps named `name` (now and later) go on.
    void open_gate(const std::string& name);
    // Every message session connection `i` (0-based, in accept order) received.
    std::vector<RawMessage> received(int i) const;
    std::vector<std::string> failures() const;

  private:
    struct Conn;
    void accept_loop();
    void run_conn(Conn& c);
    void run_watcher(Conn& c);
    void run_session(Conn& c, int index, const fake::Script& script);
    void fail(int index, const std::string& what);
    bool wait_gate(const std::string& name);

    FakeOptions opts_;
    int listen_fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<int> watcher_queries_{0};
    std::atomic<int> cancels_{0};
    mutable std::mutex mu_;
    std::condition_variable done_cv_;
    std::deque<fake::Script> scripts_;
    fake::Script fallback_;
    std::vector<std::unique_ptr<Conn>> conns_;
    std::vector<std::vector<RawMessage>> received_;  // by session index
    std::vector<std::string> failures_;
    std::set<std::string> gates_;  // opened by the test
    std::pair<std::int32_t, std::int32_t> cancel_{0, 0};
    int sessions_ = 0;
    int done_ = 0;
    std::thread acceptor_;
};

}  // namespace pgrouter::test
