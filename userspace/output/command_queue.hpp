// Requests from the HTTP threads that must run on the run loop's thread
// (they change enforcement state): the caller waits, with a timeout, for the
// loop, which sleeps in wait_until() and wakes when a request arrives.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

namespace keyscope {

/// An answer: HTTP status and a JSON body.
using CommandReply = std::pair<int, nlohmann::json>;

class CommandQueue {
public:
    /// From any thread: nullopt if the loop did not take the request in time,
    /// and then it never runs (a caller told "no" must not see it happen later).
    std::optional<CommandReply> call(nlohmann::json request, std::chrono::milliseconds timeout) {
        auto p = std::make_shared<Pending>();
        p->request = std::move(request);
        auto answer = p->reply.get_future();
        {
            std::lock_guard lock(mu_);
            queue_.push_back(p);
        }
        arrived_.notify_one();
        if (answer.wait_for(timeout) != std::future_status::ready) {
            std::lock_guard lock(mu_);
            auto it = std::find(queue_.begin(), queue_.end(), p);
            if (it != queue_.end()) {
                queue_.erase(it);
                return std::nullopt;
            }
            // the loop is answering it right now
        }
        return answer.get();
    }

    /// On the run loop: sleeps until a request waits or `until`.
    template <class TimePoint>
    void wait_until(TimePoint until) {
        std::unique_lock lock(mu_);
        arrived_.wait_until(lock, until, [&] { return !queue_.empty(); });
    }

    /// On the run loop: answers every waiting request.
    void serve(const std::function<CommandReply(const nlohmann::json&)>& handler) {
        std::deque<std::shared_ptr<Pending>> todo;
        {
            std::lock_guard lock(mu_);
            todo.swap(queue_);
        }
        for (auto& p : todo) {
            try {
                p->reply.set_value(handler(p->request));
            } catch (const std::exception& e) {
                p->reply.set_value({500, {{"error", e.what()}}});  // one request failed, not the daemon
            }
        }
    }

private:
    struct Pending {
        nlohmann::json request;
        std::promise<CommandReply> reply;
    };
    std::mutex mu_;
    std::condition_variable arrived_;
    std::deque<std::shared_ptr<Pending>> queue_;
};

}  // namespace keyscope
