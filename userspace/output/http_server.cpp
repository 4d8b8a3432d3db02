#include "output/http_server.hpp"

#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <charconv>

#include <cerrno>
#include <chrono>

#include "output/metrics.hpp"
#include "output/snapshot_json.hpp"
#include "util/error.hpp"

namespace keyscope {
namespace {

double now_unix() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string address_text(const std::string& host, int port) {
    bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

/// Why binding failed, and what to do about it, from the errno bind() left.
std::string bind_failure(int err) {
    switch (err) {
        case EADDRINUSE:
            return "address already in use (pick another port with --http)";
        case EACCES:
            return "permission denied (ports below 1024 need CAP_NET_BIND_SERVICE; pick another port with "
                   "--http)";
        case EADDRNOTAVAIL:
            return "address not available on this host (use 127.0.0.1 or 0.0.0.0 in --http)";
        default:
            return "cannot listen: " + (err ? errno_text(err) : std::string("unknown error")) +
                   " (check the address given to --http)";
    }
}

void send_json(httplib::Response& res, const nlohmann::json& j) {
    // replace, not throw, should a key ever carry invalid UTF-8
    res.set_content(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                    "application/json");
}

}  // namespace

HttpServer::HttpServer(const std::string& host_arg, int port, const SnapshotBoard& board,
                       CommandQueue* commands)
    : server_(std::make_unique<httplib::Server>()) {
    // getaddrinfo wants "::1", not the "[::1]" of a URL
    std::string host = host_arg;
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    const std::string where = "--http " + address_text(host, port);

    // httplib resolves the host itself but cannot say that this is what failed
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    int gai = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
    if (gai != 0)
        throw Error(where + ": cannot resolve '" + host + "': " + gai_strerror(gai) +
                    " (use an IP address such as 127.0.0.1)");
    freeaddrinfo(found);

    auto& svr = *server_;
    svr.Get("/metrics", [&board](const httplib::Request&, httplib::Response& res) {
        res.set_content(render_prometheus(board.get(), now_unix()),
                        "text/plain; version=0.0.4; charset=utf-8");
    });
    svr.Get("/healthz", [&board](const httplib::Request&, httplib::Response& res) {
        HealthVerdict v = health(board.get(), now_unix());
        res.status = v.ok ? 200 : 503;
        res.set_content(v.ok ? "ok\n" : "unhealthy: " + v.reason + "\n", "text/plain; charset=utf-8");
    });
    svr.Get("/api/snapshot", [&board](const httplib::Request&, httplib::Response& res) {
        send_json(res, snapshot_to_json(board.get()));
    });
    svr.Get("/api/keys", [&board](const httplib::Request&, httplib::Response& res) {
        send_json(res, keys_json(board.get()));
    });
    svr.Get("/api/hotspots", [&board](const httplib::Request&, httplib::Response& res) {
        send_json(res, hotspots_json(board.get()));
    });
    svr.Get("/api/status", [&board](const httplib::Request&, httplib::Response& res) {
        send_json(res, status_json(board.get(), now_unix()));
    });
    // registered last: routes match in order
    // mitigation rules: answered by the run loop, which owns them
    auto relay = [commands](nlohmann::json request, httplib::Response& res) {
        if (!commands) {
            res.status = 404;
            send_json(res, {{"error", "this keyscope has no enforcement API"}});
            return;
        }
        auto reply = commands->call(std::move(request), std::chrono::seconds(5));
        if (!reply) {
            res.status = 503;
            send_json(res, {{"error", "the daemon did not answer in time"}});
            return;
        }
        res.status = reply->first;
        send_json(res, reply->second);
    };
    svr.Get("/api/rules", [relay](const httplib::Request&, httplib::Response& res) {
        relay({{"op", "list"}}, res);
    });
    svr.Post("/api/rules", [relay](const httplib::Request& req, httplib::Response& res) {
        auto body = nlohmann::json::parse(req.body, nullptr, false);
        if (body.is_discarded() || !body.is_object()) {
            res.status = 400;
            send_json(res, {{"error", "the body must be a JSON object describing the rule"}});
            return;
        }
        relay({{"op", "add"}, {"rule", body}}, res);
    });
    svr.Delete(R"(/api/rules/(\d+))", [relay](const httplib::Request& req, httplib::Response& res) {
        const std::string text = req.matches[1].str();
        std::uint32_t id = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
        if (ec != std::errc() || end != text.data() + text.size()) {
            res.status = 404;  // no id that large was ever given out
            send_json(res, {{"error", "no rule " + text}});
            return;
        }
        relay({{"op", "remove"}, {"id", id}}, res);
    });
    svr.Get(".*", [](const httplib::Request&, httplib::Response& res) {
        res.status = 404;
        res.set_content("not found: try /metrics, /healthz, /api/keys, /api/hotspots or /api/status\n",
                        "text/plain; charset=utf-8");
    });

    // httplib's default sets SO_REUSEPORT, which would let a second keyscope
    // bind the same port and silently take half of the scrapes.
    svr.set_socket_options([](socket_t sock) {
        int yes = 1;
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    // scrapes and a few curls: a handful of threads, not one per core
    svr.new_task_queue = [] { return new httplib::ThreadPool(4); };
    svr.set_payload_max_length(4096);
    // an idle keep-alive connection holds a worker, and the destructor waits
    // for it: 1 s, not httplib's 5 s, bounds how long shutdown can take
    svr.set_keep_alive_timeout(1);

    errno = 0;
    if (port == 0) {
        port_ = svr.bind_to_any_port(host);
        if (port_ < 0) throw Error(where + ": " + bind_failure(errno));
    } else {
        if (!svr.bind_to_port(host, port)) throw Error(where + ": " + bind_failure(errno));
        port_ = port;
    }

    thread_ = std::thread([this] {
        server_->listen_after_bind();
        finished_ = true;
    });
    // stop() does nothing until the accept loop runs: wait for it, so that
    // the destructor can never miss it and join forever
    while (!server_->is_running() && !finished_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

HttpServer::~HttpServer() {
    server_->stop();
    thread_.join();
}

}  // namespace keyscope
