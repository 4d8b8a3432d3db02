// Every threshold of the hotspot engine, by name ("read.rate"), with global
// values and per-server and per-prefix overrides. Precedence: a prefix
// override (the key matches its glob) beats a server override, which beats
// the global value, which defaults to the built-in one.
#pragma once

#include <array>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "detect/entities.hpp"

namespace keyscope {

/// A parameter's definition: name, built-in value, valid range, meaning.
struct ParamDef {
    const char* name;
    double fallback;
    double min, max;
    const char* help;
};

/// Every known parameter (for --help, validation and the README).
const std::vector<ParamDef>& param_defs();

struct Override {
    enum class Scope { server, prefix } scope = Scope::server;
    std::string match;  // "HOST:PORT", or a key glob such as "session:*"
    std::map<std::string, double> values;
};

class DetectConfig {
public:
    DetectConfig();
    /// "read.rate=3000"; throws keyscope::Error naming the bad name or value.
    void set(std::string_view assignment);
    /// "prefix=session:* read.rate=10000 write.rate=50" or "server=10.0.0.1:6379 ...".
    void add_override(std::string_view text);

    /// The value that applies to an entity on `server`; `key` is the key or
    /// prefix name (empty for slots and servers).
    double get(std::string_view name, std::string_view server = {}, std::string_view key = {}) const;
    /// Where a parameter sits in param_defs() and in resolve()'s values;
    /// throws keyscope::Error for an unknown name.
    static std::size_t index_of(std::string_view name);
    /// Every parameter's value (param_defs() order) as it applies to an
    /// entity on `server` named `key`: get() for all names at once.
    std::vector<double> resolve(std::string_view server, std::string_view key) const;
    /// Whether any override depends on the key or prefix name.
    bool has_prefix_overrides() const;
    /// Checks what single assignments cannot: bands increase, window <= history.
    void validate() const;
    /// Severity bands "kind.bands" as four increasing multipliers.
    std::array<double, 4> bands(std::string_view kind, std::string_view server = {},
                                std::string_view key = {}) const;

    PrefixRules prefixes;
    double window_s = 60;       // sliding window of the count rules
    double history_s = 600;     // history kept for baselines
    double min_history_s = 30;  // history needed before a temporal rule may fire
    double quiet_s = 10;        // a hotspot ends after this long below its threshold
    double hold = 0.8;          // an active hotspot holds while value >= hold * threshold

private:
    std::map<std::string, double> global_;
    std::vector<Override> overrides_;
};

}  // namespace keyscope
