// keyscope: per-key statistics and hotspots of unmodified Redis servers, from the kernel.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "act/throttle_command.hpp"
#include "cli_options.hpp"
#include "detect/detect_config.hpp"
#include "run.hpp"
#include "top/top_command.hpp"
#include "util/error.hpp"

namespace {

// CLI11 reads a config file only as an option of the top-level app; let
// `keyscope run --config F` mean the same as `keyscope --config F run`.
// Returns the arguments reversed, as CLI11's parse(vector) takes them.
std::vector<std::string> hoist_config(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    for (std::size_t i = 1; i < args.size(); ++i) {
        std::size_t n = args[i] == "--config" && i + 1 < args.size() ? 2
                        : args[i].rfind("--config=", 0) == 0         ? 1
                                                                     : 0;
        if (!n) continue;
        auto first = args.begin() + static_cast<std::ptrdiff_t>(i);
        std::vector<std::string> moved(first, first + static_cast<std::ptrdiff_t>(n));
        args.erase(first, first + static_cast<std::ptrdiff_t>(n));
        args.insert(args.begin(), moved.begin(), moved.end());
        i += n - 1;
    }
    std::reverse(args.begin(), args.end());
    return args;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace keyscope;
    spdlog::set_default_logger(spdlog::stderr_color_mt("keyscope"));
    spdlog::set_pattern("%^%l%$: %v");

    CLI::App app{"keyscope - find hot keys in Redis from the kernel, with no change to the server"};
    app.require_subcommand(1);
    bool verbose = false;
    app.add_flag("-v,--verbose", verbose, "debug logging (libbpf and verifier messages)");
    app.allow_config_extras(CLI::config_extras_mode::error);
    app.set_config("--config", "",
                   "read options from a TOML or INI file: a [run] or [top] section (see README)");

    auto* run_cmd = app.add_subcommand("run", "observe targets and print per-key statistics every interval");
    ObserveFlags run_flags;
    run_flags.add_to(run_cmd, "2s");
    std::string output = "text";
    run_cmd->add_option("-n,--top", run_flags.opts.top, "keys listed per interval")
        ->capture_default_str()
        ->check(CLI::Range(1, 100000));
    run_cmd->add_option("-o,--output", output, "text or json (JSON Lines)")->capture_default_str();
    run_cmd->add_option("--http", run_flags.opts.http, "HOST:PORT for /metrics, /healthz and /api, or off")
        ->capture_default_str();

    auto* top_cmd =
        app.add_subcommand("top", "live view of the hottest keys (like htop); batch text when piped");
    ObserveFlags top_flags;
    top_flags.add_to(top_cmd, "1s");
    TopOptions top_opts;
    top_cmd->add_option("--connect", top_opts.connect,
                        "show a running daemon (its --http address, e.g. 127.0.0.1:9464) instead of probing");
    top_cmd->add_flag("-b,--batch", top_opts.batch, "print text snapshots like top -b (default when piped)");
    top_cmd
        ->add_option("-n,--iterations", top_opts.iterations,
                     "batch mode: snapshots to print (0 = until Ctrl-C)")
        ->capture_default_str();

    ThrottleCommand throttle_cmd;
    throttle_cmd.add_to(app);

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
    try {
        app.parse(hoist_config(argc, argv));
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
            RunOptions opts = run_flags.resolve();
            if (output == "json")
                opts.output = OutputFormat::json;
            else if (output != "text")
                throw Error("--output: bad value '" + output + "' (use text or json)", 2);
            return run(opts);
        }
        if (*top_cmd) {
            top_flags.opts.http = "off";
            top_opts.run = top_flags.resolve();
            return top(top_opts);
        }
        if (throttle_cmd.chosen()) return throttle_cmd.run();
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
