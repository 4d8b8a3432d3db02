// keyscope: per-key statistics of unmodified Redis servers, from the kernel.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "run.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"

int main(int argc, char** argv) {
    using namespace keyscope;
    spdlog::set_default_logger(spdlog::stderr_color_mt("keyscope"));
    spdlog::set_pattern("%^%l%$: %v");

    CLI::App app{"keyscope - find hot keys in Redis from the kernel, with no change to the server"};
    app.require_subcommand(1);
    bool verbose = false;
    app.add_flag("-v,--verbose", verbose, "debug logging (libbpf and verifier messages)");

    auto* run_cmd = app.add_subcommand("run", "observe targets and print per-key statistics every interval");
    RunOptions opts;
    std::string interval = "2s", duration, output = "text", probe = "socket", redact = "none";
    run_cmd->add_option("-t,--target", opts.targets, "redis://HOST:PORT (repeatable); default: auto-detect");
    run_cmd->add_option("--pid", opts.pids,
                        "process of each --target, for the syscall path (default: found)");
    run_cmd->add_option("-i,--interval", interval, "reporting interval, e.g. 1s, 500ms")
        ->capture_default_str();
    run_cmd->add_option("-d,--duration", duration, "stop after this long (default: until Ctrl-C)");
    run_cmd->add_option("-n,--top", opts.top, "keys listed per interval")
        ->capture_default_str()
        ->check(CLI::Range(1, 100000));
    run_cmd->add_option("-o,--output", output, "text or json (JSON Lines)")->capture_default_str();
    run_cmd->add_option("--probe", probe, "capture path: socket (tc, default) or syscall (tp_btf)")
        ->capture_default_str();
    run_cmd->add_option("--redact", redact, "show keys as none (as they are), hash, or prefix")
        ->capture_default_str();
    run_cmd->add_option("--max-keys", opts.max_keys, "distinct keys per interval held in the kernel")
        ->capture_default_str()
        ->check(CLI::Range(16, 4 * 1024 * 1024));

    // CLI11 reports an unknown word as "a subcommand is required"; name it instead
    if (argc > 1 && argv[1][0] != '-') {
        std::string names;
        bool known = false;
        for (const auto* sub : app.get_subcommands({})) {
            names += (names.empty() ? "" : ", ") + sub->get_name();
            known = known || sub->check_name(argv[1]);
        }
        if (!known) {
            std::cerr << "error: unknown command '" << argv[1] << "' (commands: " << names
                      << "; see keyscope --help)\n";
            return 2;
        }
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "error: " << e.what() << " (see keyscope --help)\n";
        return 2;
    }
    if (verbose) spdlog::set_level(spdlog::level::debug);

    try {
        if (*run_cmd) {
            opts.interval = parse_duration(interval, "--interval");
            if (!duration.empty()) opts.duration = parse_duration(duration, "--duration");
            if (output == "json")
                opts.output = OutputFormat::json;
            else if (output != "text")
                throw Error("--output: bad value '" + output + "' (use text or json)", 2);
            opts.probe = parse_probe(probe);
            opts.redact = parse_redaction(redact);
            return run(opts);
        }
    } catch (const Error& e) {
        spdlog::error("{}", e.what());
        return e.exit_code();
    } catch (const std::exception& e) {
        spdlog::error("unexpected failure: {}", e.what());
        return 1;
    }
    return 0;
}
