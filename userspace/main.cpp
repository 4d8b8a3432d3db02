// keyscope: per-key statistics of unmodified Redis servers, from the kernel.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "detect/detect_config.hpp"
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

    bool no_detect = false;
    std::string window = "60s", history = "10m", min_history = "30s", quiet = "10s", delimiter = ":";
    std::vector<std::string> params, overrides;
    unsigned prefix_depth = 1;
    run_cmd->add_flag("--no-detect", no_detect, "only count; do not look for hotspots")->group("Detection");
    run_cmd->add_option("--window", window, "sliding window of the count rules")
        ->capture_default_str()
        ->group("Detection");
    run_cmd->add_option("--history", history, "history kept for baselines")
        ->capture_default_str()
        ->group("Detection");
    run_cmd->add_option("--min-history", min_history, "history a baseline needs before temporal rules fire")
        ->capture_default_str()
        ->group("Detection");
    run_cmd->add_option("--hotspot-quiet", quiet, "a hotspot ends after this long below its threshold")
        ->capture_default_str()
        ->group("Detection");
    run_cmd
        ->add_option("--prefix-depth", prefix_depth,
                     "delimiter-separated segments of a key prefix (0 = none)")
        ->capture_default_str()
        ->check(CLI::Range(0, 16))
        ->group("Detection");
    run_cmd->add_option("--prefix-delimiter", delimiter, "character between key segments")
        ->capture_default_str()
        ->group("Detection");
    run_cmd
        ->add_option("--prefix", opts.detect_config.prefixes.patterns,
                     "key glob that names a prefix, e.g. 'session:*' (repeatable; before --prefix-depth)")
        ->group("Detection");
    run_cmd
        ->add_option("--set", params,
                     "detection parameter NAME=VALUE, e.g. read.rate=3000 (see keyscope params)")
        ->group("Detection");
    run_cmd
        ->add_option("--override", overrides,
                     "per-server or per-prefix parameters: 'server=HOST:PORT NAME=VALUE...' or "
                     "'prefix=GLOB NAME=VALUE...' (prefix beats server beats global)")
        ->group("Detection");
    run_cmd->add_option("--http", opts.http, "HOST:PORT for /metrics, /healthz and /api, or off")
        ->capture_default_str()
        ->group("Outputs");
    app.allow_config_extras(CLI::config_extras_mode::error);
    run_cmd->allow_config_extras(CLI::config_extras_mode::error);
    app.set_config("--config", "", "read options from a TOML or INI file: a [run] section (see README)");
    auto* params_cmd =
        app.add_subcommand("params", "list the detection parameters, their defaults and meaning");

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
    // CLI11 reads a config file only as an option of the top-level app; let
    // `keyscope run --config F` mean the same as `keyscope --config F run`
    std::vector<std::string> args(argv + 1, argv + argc);
    for (std::size_t i = 1; i < args.size(); ++i) {
        std::size_t n = args[i] == "--config" && i + 1 < args.size() ? 2
                        : args[i].rfind("--config=", 0) == 0         ? 1
                                                                     : 0;
        if (!n) continue;
        std::vector<std::string> moved(args.begin() + static_cast<std::ptrdiff_t>(i),
                                       args.begin() + static_cast<std::ptrdiff_t>(i + n));
        args.erase(args.begin() + static_cast<std::ptrdiff_t>(i),
                   args.begin() + static_cast<std::ptrdiff_t>(i + n));
        args.insert(args.begin(), moved.begin(), moved.end());
        i += n - 1;
    }
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments reversed
    try {
        app.parse(args);
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
            opts.detect = !no_detect;
            auto& dc = opts.detect_config;
            auto seconds = [](const std::string& text, const char* flag) {
                return std::chrono::duration<double>(parse_duration(text, flag)).count();
            };
            dc.window_s = seconds(window, "--window");
            dc.history_s = seconds(history, "--history");
            dc.min_history_s = seconds(min_history, "--min-history");
            dc.quiet_s = seconds(quiet, "--hotspot-quiet");
            if (delimiter.size() != 1)
                throw Error("--prefix-delimiter: bad value '" + delimiter + "' (one character, e.g. :)", 2);
            dc.prefixes.delimiter = delimiter[0];
            dc.prefixes.depth = prefix_depth;
            for (const auto& p : params) dc.set(p);
            for (const auto& o : overrides) dc.add_override(o);
            dc.validate();
            if (opts.http != "off") parse_listen_address(opts.http);  // fail before loading anything
            return run(opts);
        }
        if (*params_cmd) {
            for (const auto& d : param_defs()) std::printf("%-22s %-12.10g %s\n", d.name, d.fallback, d.help);
            return 0;
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
