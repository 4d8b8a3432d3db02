// keyscope's HTTP endpoint: Prometheus /metrics, /healthz and a small JSON
// API (/api/keys, /api/hotspots, /api/status), served from a background
// thread. Every request renders from a copy of the latest Snapshot, so no
// lock is held while rendering and the run loop never waits for a client.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "output/command_queue.hpp"
#include "output/snapshot.hpp"

namespace httplib {
class Server;
}

namespace keyscope {

/// Serves the board's latest Snapshot over HTTP until destroyed.
class HttpServer {
public:
    /// Binds host:port (port 0 picks a free one) and starts serving. Throws
    /// keyscope::Error with a one-line message naming the address and the
    /// fix when it cannot listen. `board` must outlive the server.
    /// `commands` (may be null) serves /api/rules: list, add and remove mitigation rules.
    HttpServer(const std::string& host, int port, const SnapshotBoard& board,
               CommandQueue* commands = nullptr);
    /// Stops accepting, finishes requests in flight and joins the thread.
    ~HttpServer();

    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    /// The port actually bound (useful with port 0).
    int port() const { return port_; }

private:
    std::unique_ptr<httplib::Server> server_;
    std::thread thread_;
    std::atomic<bool> finished_{false};  // the serving thread has returned
    int port_ = 0;
};

}  // namespace keyscope
