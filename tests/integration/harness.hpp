// Real processes for integration tests: a redis-server on a free port, a
// keyscope daemon whose JSON Lines the test reads, and a raw RESP client
// whose exact bytes the test knows.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <functional>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../unit/resp_driver.hpp"
#include "free_port.hpp"

namespace keyscope::test {

inline int connect_tcp(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

inline pid_t spawn(const std::vector<std::string>& argv, int* stdout_fd = nullptr) {
    int pipefd[2] = {-1, -1};
    if (stdout_fd && pipe(pipefd) != 0) throw std::runtime_error("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        if (stdout_fd) {
            dup2(pipefd[1], 1);
            close(pipefd[0]);
            close(pipefd[1]);
        } else {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
        }
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    if (stdout_fd) {
        close(pipefd[1]);
        *stdout_fd = pipefd[0];
    }
    return pid;
}

inline int connect_unix(const std::string& path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

class RedisServer {
public:
    /// `unix_socket`: also listen on this unix socket path.
    explicit RedisServer(const std::string& unix_socket = "") : port_(free_port()) {
        std::vector<std::string> argv = {
            "redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",  "--save", "",
            "--appendonly", "no",     "--daemonize",         "no",     "--loglevel", "warning"};
        if (!unix_socket.empty()) {
            argv.insert(argv.end(), {"--unixsocket", unix_socket, "--unixsocketperm", "700"});
        }
        pid_ = spawn(argv);
        for (int i = 0; i < 200; ++i) {
            int fd = connect_tcp(port_);
            if (fd >= 0) {
                close(fd);
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        throw std::runtime_error("redis-server did not start on port " + std::to_string(port_));
    }
    ~RedisServer() {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    int port() const { return port_; }
    pid_t pid() const { return pid_; }

private:
    int port_;
    pid_t pid_;
};

class MemcachedServer {
public:
    /// `port` 0: a free one (a restart passes the old one).
    explicit MemcachedServer(int port = 0) : port_(port ? port : free_port()) {
        pid_ =
            spawn({"memcached", "-p", std::to_string(port_), "-l", "127.0.0.1", "-U", "0", "-u", "nobody"});
        for (int i = 0; i < 200; ++i) {
            int fd = connect_tcp(port_);
            if (fd >= 0) {
                close(fd);
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        throw std::runtime_error("memcached did not start on port " + std::to_string(port_));
    }
    ~MemcachedServer() { kill_now(); }
    void kill_now() {
        if (pid_ <= 0) return;
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    int port() const { return port_; }
    pid_t pid() const { return pid_; }

private:
    int port_;
    pid_t pid_;
};

/// Sends `bytes` on a text-protocol connection and reads until `count` lines
/// `end` have come back (pipelined requests: one per request).
inline std::string text_roundtrip(int fd, const std::string& bytes, const std::string& end, int count = 1) {
    REQUIRE(write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
    std::string got;
    char buf[65536];
    auto ends = [&] {
        int n = 0;
        for (auto p = got.find(end); p != std::string::npos; p = got.find(end, p + end.size())) ++n;
        return n;
    };
    while (ends() < count) {
        pollfd p{fd, POLLIN, 0};
        REQUIRE(poll(&p, 1, 5000) > 0);
        ssize_t n = read(fd, buf, sizeof buf);
        REQUIRE(n > 0);
        got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
}

/// A client that sends exact bytes and waits for exactly N replies.
class RespClient {
public:
    explicit RespClient(int port) : fd_(connect_tcp(port)) {
        if (fd_ < 0) throw std::runtime_error("connect failed");
    }
    explicit RespClient(const std::string& unix_path) : fd_(connect_unix(unix_path)) {
        if (fd_ < 0) throw std::runtime_error("connect to " + unix_path + " failed");
    }
    ~RespClient() { close(fd_); }
    /// Sends `bytes` (one write) and reads until `replies` more replies came.
    std::vector<ParsedReply> roundtrip(const std::string& bytes, std::size_t replies) {
        std::size_t off = 0;
        while (off < bytes.size()) {
            ssize_t n = write(fd_, bytes.data() + off, bytes.size() - off);
            if (n <= 0) throw std::runtime_error("write failed");
            off += static_cast<std::size_t>(n);
        }
        std::size_t want = parser_.replies.size() + replies;
        char buf[65536];
        while (parser_.replies.size() < want) {
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, 5000) <= 0) throw std::runtime_error("timed out waiting for replies");
            ssize_t n = read(fd_, buf, sizeof buf);
            if (n <= 0) throw std::runtime_error("connection closed");
            parser_.chunk(std::string_view(buf, static_cast<std::size_t>(n)));
        }
        return {parser_.replies.end() - static_cast<std::ptrdiff_t>(replies), parser_.replies.end()};
    }

private:
    int fd_;
    ReplyDriver parser_;
};

/// Sends `rate` commands per second on one connection, in batches every
/// 10 ms, until destroyed: a steady, exactly counted load. `make(i)` is the
/// i-th command's bytes.
class PacedLoad {
public:
    PacedLoad(int port, double rate, std::function<std::string(std::uint64_t)> make)
        : client_(port), thread_([this, rate, make = std::move(make)] {
              auto start = std::chrono::steady_clock::now();
              while (!stop_) {
                  double secs =
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                  auto due = static_cast<std::uint64_t>(secs * rate);
                  std::string batch;
                  std::size_t n = 0;
                  for (std::uint64_t i = sent_; i < due; ++i, ++n) batch += make(i);
                  if (n) client_.roundtrip(batch, n);
                  sent_ = due > sent_ ? due : sent_.load();
                  std::this_thread::sleep_for(std::chrono::milliseconds(10));
              }
          }) {}
    ~PacedLoad() { stop(); }
    /// Stops and returns how many commands were sent (and answered).
    std::uint64_t stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
        return sent_;
    }

private:
    RespClient client_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> sent_{0};
    std::thread thread_;
};

/// keyscope run ... -o json, read line by line.
class Daemon {
public:
    explicit Daemon(std::vector<std::string> args) {
        // one daemon per test may serve HTTP; the others must not fight for the port
        if (std::find(args.begin(), args.end(), "--http") == args.end())
            args.insert(args.end(), {"--http", "off"});
        args.insert(args.begin(), {KEYSCOPE_BIN, "run", "-o", "json"});
        pid_ = spawn(args, &out_);
        auto ready = next_line(std::chrono::seconds(30));
        if (!ready) throw std::runtime_error("keyscope exited before it was ready");
        ready_ = nlohmann::json::parse(*ready);
        if (ready_["type"] != "ready") throw std::runtime_error("first line is not ready: " + *ready);
    }
    ~Daemon() {
        if (pid_ > 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
        close(out_);
    }
    const nlohmann::json& ready() const { return ready_; }
    pid_t pid() const { return pid_; }

    /// Every line printed during the next `d` (keeps the pipe drained while a test waits).
    std::vector<nlohmann::json> lines_for(std::chrono::milliseconds d) {
        std::vector<nlohmann::json> lines;
        auto deadline = std::chrono::steady_clock::now() + d;
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) break;
            if (auto l = next_line(left)) lines.push_back(nlohmann::json::parse(*l));
        }
        return lines;
    }

    /// SIGINT, then every line until exit; returns (intervals, summary) and the exit status.
    std::vector<nlohmann::json> stop(int* status) {
        kill(pid_, SIGINT);
        std::vector<nlohmann::json> lines;
        while (auto l = next_line(std::chrono::seconds(30))) lines.push_back(nlohmann::json::parse(*l));
        waitpid(pid_, status, 0);
        pid_ = -1;
        return lines;
    }

    /// stop(), then the summary line; throws unless the run exited 0 with one.
    nlohmann::json summary() {
        int status = 0;
        auto lines = stop(&status);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            throw std::runtime_error("keyscope did not exit 0 (wait status " + std::to_string(status) + ")");
        if (lines.empty() || lines.back()["type"] != "summary")
            throw std::runtime_error("keyscope printed no summary line at exit");
        return lines.back();
    }

private:
    std::optional<std::string> next_line(std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto nl = buf_.find('\n');
            if (nl != std::string::npos) {
                std::string line = buf_.substr(0, nl);
                buf_.erase(0, nl + 1);
                return line;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd p{out_, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
            char chunk[65536];
            ssize_t n = read(out_, chunk, sizeof chunk);
            if (n <= 0) return std::nullopt;
            buf_.append(chunk, static_cast<std::size_t>(n));
        }
    }

    pid_t pid_ = -1;
    int out_ = -1;
    std::string buf_;
    nlohmann::json ready_;
};

/// Why BPF tests cannot run here, or empty if they can.
inline std::string bpf_unavailable() {
    if (geteuid() != 0) return "not root";
    struct stat st {};
    if (stat("/sys/kernel/btf/vmlinux", &st) != 0) return "kernel has no BTF";
    return {};
}

}  // namespace keyscope::test
