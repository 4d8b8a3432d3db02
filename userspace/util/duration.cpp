#include "util/duration.hpp"

#include <charconv>
#include <cmath>
#include <string>

#include "util/error.hpp"

namespace keyscope {

std::chrono::milliseconds parse_duration(std::string_view text, std::string_view what) {
    auto bad = [&] {
        return Error(std::string(what) + ": bad duration '" + std::string(text) +
                     "' (use e.g. 500ms, 2s, 5m, 1h)");
    };
    std::size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    if (i == 0) throw bad();
    double value = 0;
    // the whole number must parse: "1.2.3s" is an error, not 1.2 s
    auto [end, ec] = std::from_chars(text.data(), text.data() + i, value);
    if (ec != std::errc() || end != text.data() + i) throw bad();
    std::string_view unit = text.substr(i);
    double ms_per = 0;
    if (unit.empty() || unit == "s")
        ms_per = 1000;
    else if (unit == "ms")
        ms_per = 1;
    else if (unit == "m")
        ms_per = 60000;
    else if (unit == "h")
        ms_per = 3600000;
    else
        throw bad();
    double ms = value * ms_per;
    // below 1 ms would round to 0, which means "no limit" for --duration
    if (!std::isfinite(ms) || ms < 1 || ms > 1e12) throw bad();
    return std::chrono::milliseconds(static_cast<long long>(std::llround(ms)));
}

}  // namespace keyscope
