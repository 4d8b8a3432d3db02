#include "act/throttle_command.hpp"

#include <httplib.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "util/duration.hpp"
#include "util/error.hpp"

namespace keyscope {

void ThrottleCommand::add_to(CLI::App& app) {
    cmd_ = app.add_subcommand("throttle", "add, list or remove mitigation rules of a running keyscope run");
    cmd_->require_subcommand(1);
    cmd_->add_option("--connect", connect_, "the daemon's --http address")->capture_default_str();
    add_ =
        cmd_->add_subcommand("add", "throttle (rate) or shed (share of connections) a key, prefix or client");
    add_->add_option("--key", key_, "the key (exact bytes)");
    add_->add_option("--prefix", prefix_, "a key prefix ending with the delimiter, e.g. user:");
    add_->add_option("--client", client_,
                     "a client ADDR[:PORT]; with --key/--prefix: only this client's requests");
    add_->add_flag("--connections", connections_, "the server's new connections");
    add_->add_option("--server", server_, "HOST:PORT when the daemon observes several servers");
    add_->add_option("--rate", rate_, "throttle: requests per second let through");
    add_->add_option("--burst", burst_,
                     "throttle: requests let through at once (default rate/20, at least 1)");
    add_->add_option("--shed", shed_, "shed: share of connections whose matching requests are dropped, 0-1");
    add_->add_option("--ttl", ttl_, "remove the rule after this long (default: until removed)");
    add_->add_flag("--dry-run", dry_run_, "count what would be dropped; drop nothing");
    add_->add_option("--reason", reason_, "why, for the log and the API");
    list_ = cmd_->add_subcommand("list", "the daemon's rules and what they dropped");
    list_->add_option("-o,--output", output_, "text or json")->capture_default_str();
    rm_ = cmd_->add_subcommand("rm", "remove a rule");
    rm_->add_option("id", id_, "the rule's id (see throttle list)")->required();
    // `keyscope throttle add --connect ...` reads as naturally as `throttle --connect ... add`
    for (auto* sub : {add_, list_, rm_}) sub->fallthrough();
}

namespace {

httplib::Client client_for(const std::string& address) {
    std::string a = address.rfind("http://", 0) == 0 ? address.substr(7) : address;
    auto colon = a.rfind(':');
    if (colon == std::string::npos || colon == 0)
        throw Error("--connect: bad address '" + address + "' (use HOST:PORT, the daemon's --http)", 2);
    int port = std::atoi(a.substr(colon + 1).c_str());
    if (port <= 0 || port > 65535) throw Error("--connect: bad port in '" + address + "'", 2);
    httplib::Client cli(a.substr(0, colon), port);
    cli.set_connection_timeout(2);
    cli.set_read_timeout(10);
    return cli;
}

nlohmann::json answer(const httplib::Result& res, const std::string& address) {
    if (!res)
        throw Error("--connect " + address + ": " + httplib::to_string(res.error()) +
                    " (is `keyscope run --http " + address + "` running?)");
    auto body = nlohmann::json::parse(res->body, nullptr, false);
    if (res->status >= 300) {
        std::string why = body.is_object() && body.contains("error") ? body["error"].get<std::string>()
                                                                     : "HTTP " + std::to_string(res->status);
        throw Error(why);
    }
    return body;
}

void print_rule(const nlohmann::json& r) {
    std::string what = r.contains("key")             ? "key " + r["key"].get<std::string>()
                       : r.contains("prefix")        ? "prefix " + r["prefix"].get<std::string>()
                       : r["match"] == "connections" ? std::string("new connections")
                                                     : std::string("client");
    if (r.contains("client")) what += " client " + r["client"].get<std::string>();
    char act[64];
    if (r["action"] == "throttle")
        std::snprintf(act, sizeof act, "throttle %.0f/s", r["rate"].get<double>());
    else
        std::snprintf(act, sizeof act, "shed %.0f%%", r["shed"].get<double>() * 100);
    std::printf("%4u  %-8s %-7s %-18s %-21s %-36s %10llu %10llu\n", r["id"].get<unsigned>(),
                r["mode"].get<std::string>().c_str(), r["origin"].get<std::string>().c_str(), act,
                r["server"].get<std::string>().c_str(), what.c_str(),
                static_cast<unsigned long long>(r["dropped"].get<std::uint64_t>()),
                static_cast<unsigned long long>(r["would_drop"].get<std::uint64_t>()));
}

}  // namespace

int ThrottleCommand::run() const {
    auto cli = client_for(connect_);
    if (add_->parsed()) {
        nlohmann::json body;
        if (!key_.empty()) body["key"] = key_;
        if (!prefix_.empty()) body["prefix"] = prefix_;
        if (connections_) body["connections"] = true;
        if (!client_.empty()) body["client"] = client_;
        if (!server_.empty()) body["server"] = server_;
        if (rate_ > 0) body["rate"] = rate_;
        if (burst_ > 0) body["burst"] = burst_;
        if (shed_ > 0) body["shed"] = shed_;
        if (dry_run_) body["dry_run"] = true;
        if (!ttl_.empty())
            body["ttl_s"] = std::chrono::duration<double>(parse_duration(ttl_, "--ttl")).count();
        if (!reason_.empty()) body["reason"] = reason_;
        auto r = answer(cli.Post("/api/rules", body.dump(), "application/json"), connect_);
        std::printf("added rule %u\n", r["id"].get<unsigned>());
        return 0;
    }
    if (list_->parsed()) {
        auto j = answer(cli.Get("/api/rules"), connect_);
        if (output_ == "json") {
            std::cout << j.dump() << "\n";
            return 0;
        }
        if (output_ != "text") throw Error("--output: bad value '" + output_ + "' (use text or json)", 2);
        std::printf("automatic mitigation: %s\n", j["mode"].get<std::string>().c_str());
        std::printf("%4s  %-8s %-7s %-18s %-21s %-36s %10s %10s\n", "ID", "MODE", "ORIGIN", "ACTION",
                    "SERVER", "MATCHES", "DROPPED", "WOULD");
        for (const auto& r : j["rules"]) print_rule(r);
        if (j["rules"].empty()) std::printf("  (no rules)\n");
        return 0;
    }
    answer(cli.Delete("/api/rules/" + std::to_string(id_)), connect_);
    std::printf("removed rule %u\n", id_);
    return 0;
}

}  // namespace keyscope
