#include "top/top_command.hpp"

#include <curses.h>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <future>
#include <iostream>
#include <thread>

#include "output/snapshot_json.hpp"
#include "top/top_model.hpp"
#include "top/top_view.hpp"
#include "util/error.hpp"

namespace keyscope {
namespace {

std::atomic<bool> g_quit{false};

void on_quit(int) {
    g_quit = true;
}

// A crash must not leave the terminal in raw mode: restore it, then die as before.
void on_crash(int sig) {
    restore_terminal();
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

double now_unix() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int terminal_width() {
    winsize ws{};
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 120;
}

/// Polls a running daemon's /api/snapshot into the board.
class ApiSampler {
public:
    ApiSampler(const std::string& address, std::chrono::milliseconds every, SnapshotBoard& board,
               std::atomic<bool>& stop)
        : board_(board), stop_(stop), every_(every) {
        std::string a = address;
        if (a.rfind("http://", 0) == 0) a = a.substr(7);
        auto colon = a.rfind(':');
        if (colon == std::string::npos || colon == 0)
            throw Error("--connect: bad address '" + address + "' (use HOST:PORT, the daemon's --http)", 2);
        host_ = a.substr(0, colon);
        port_ = std::atoi(a.substr(colon + 1).c_str());
        if (port_ <= 0 || port_ > 65535) throw Error("--connect: bad port in '" + address + "'", 2);
        // the first fetch is synchronous: a wrong address fails before the screen opens
        std::string why = fetch();
        if (!why.empty())
            throw Error("--connect " + address + ": " + why + " (is `keyscope run --http " + address +
                        "` running?)");
        thread_ = std::thread([this] {
            while (!stop_) {
                for (int i = 0; i < every_.count() / 50 && !stop_; ++i)
                    std::this_thread::sleep_for(std::chrono::milliseconds(50));
                if (!stop_) error_ = fetch();
            }
        });
    }
    ~ApiSampler() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    std::string error() const { return error_; }

private:
    std::string fetch() {
        httplib::Client cli(host_, port_);
        cli.set_connection_timeout(2);
        cli.set_read_timeout(5);
        auto res = cli.Get("/api/snapshot");
        if (!res) return "no answer (" + httplib::to_string(res.error()) + ")";
        if (res->status != 200) return "HTTP " + std::to_string(res->status);
        try {
            board_.publish(snapshot_from_json(nlohmann::json::parse(res->body)));
        } catch (const std::exception& e) {
            return std::string("bad answer: ") + e.what();
        }
        return "";
    }

    SnapshotBoard& board_;
    std::atomic<bool>& stop_;
    std::chrono::milliseconds every_;
    std::string host_;
    int port_ = 0;
    std::thread thread_;
    std::string error_;  // written by the sampler thread; read for the status line only
};

}  // namespace

int top(const TopOptions& opts) {
    const bool batch = opts.batch || !isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO);
    SnapshotBoard board;
    std::atomic<bool> stop{false};
    std::thread prober;
    std::unique_ptr<ApiSampler> api;
    std::exception_ptr prober_failure;
    UiState ui;
    CommandQueue commands;  // `t` in embedded mode: answered by the run loop
    // `t`: a rule for the selected key, through the daemon's API or our own run loop
    auto rule_for = [](const std::string& server, const std::string& key) {
        return nlohmann::json{{"shown_key", key},
                              {"server", server},
                              {"rate", kTopThrottleRate},
                              {"ttl_s", 600},
                              {"reason", "keyscope top"}};
    };
    auto outcome = [](int status, const nlohmann::json& body) -> std::string {
        if (status >= 300)
            return "not throttled: " + (body.is_object() && body.contains("error")
                                            ? body["error"].get<std::string>()
                                            : "HTTP " + std::to_string(status));
        return "rule " + std::to_string(body.value("id", 0u)) + " added: see page 6";
    };

    struct sigaction sa {};
    sa.sa_handler = on_quit;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    if (!opts.connect.empty()) {
        api = std::make_unique<ApiSampler>(opts.connect, opts.run.interval, board, stop);
        ui.source = "daemon at " + opts.connect;
        ui.throttle = [&, address = opts.connect](const std::string& server, const std::string& key) {
            std::string a = address.rfind("http://", 0) == 0 ? address.substr(7) : address;
            auto colon = a.rfind(':');
            httplib::Client cli(a.substr(0, colon), std::atoi(a.substr(colon + 1).c_str()));
            cli.set_connection_timeout(2);
            auto res = cli.Post("/api/rules", rule_for(server, key).dump(), "application/json");
            if (!res) return std::string("not throttled: the daemon did not answer");
            return outcome(res->status, nlohmann::json::parse(res->body, nullptr, false));
        };
    } else {
        // the probes run in their own thread; errors before they attach end
        // keyscope with one line before the screen ever opens
        std::promise<void> ready;
        auto attached = ready.get_future();
        prober = std::thread([&] {
            RunHooks hooks;
            hooks.board = &board;
            hooks.stop = &stop;
            hooks.snapshot_keys = 500;
            hooks.commands = &commands;
            bool signalled = false;
            hooks.on_ready = [&] {
                signalled = true;
                ready.set_value();
            };
            try {
                run(opts.run, hooks);
            } catch (...) {
                if (!signalled)
                    ready.set_exception(std::current_exception());
                else
                    prober_failure = std::current_exception();
            }
        });
        try {
            attached.get();
        } catch (...) {
            prober.join();
            throw;
        }
        ui.source = "probes";
        if (opts.run.probe == ProbeKind::socket)
            ui.throttle = [&](const std::string& server, const std::string& key) {
                auto reply =
                    commands.call({{"op", "add"}, {"rule", rule_for(server, key)}}, std::chrono::seconds(3));
                return reply ? outcome(reply->first, reply->second) : std::string("not throttled: no answer");
            };
    }
    auto finish = [&] {
        stop = true;
        if (prober.joinable()) prober.join();
        api.reset();
        if (prober_failure) std::rethrow_exception(prober_failure);
    };

    TopModel model;
    double shown_ts = -1;
    auto refresh_model = [&]() {
        Snapshot s = board.get();
        if (s.ts == shown_ts) return false;
        shown_ts = s.ts;
        model.update(s);
        return true;
    };

    if (batch) {
        const int width = terminal_width();
        for (int n = 0; !g_quit && (opts.iterations == 0 || n < opts.iterations);) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            if (board.get().ts <= 0 || !refresh_model()) continue;
            std::cout << batch_text(model, ui, now_unix(), width, 40) << std::endl;
            ++n;
        }
        finish();
        return 0;
    }

    for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE}) std::signal(sig, on_crash);
    spdlog::set_level(spdlog::level::off);  // log lines would tear the screen
    {
        TopScreen screen;
        bool dirty = true;
        while (!g_quit && !ui.quit) {
            int key = screen.read_key(100);
            if (key == KEY_RESIZE)
                dirty = true;
            else if (key >= 0) {
                handle_key(key, model, ui, std::max(screen.rows() - 8, 1));
                dirty = true;
            }
            if (!ui.paused && refresh_model()) dirty = true;
            if (api && !api->error().empty()) ui.message = "daemon: " + api->error();
            if (dirty) screen.draw(model, ui, now_unix());
            dirty = false;
        }
    }
    spdlog::set_level(spdlog::level::info);
    finish();
    return 0;
}

}  // namespace keyscope
