// One error type for everything that stops keyscope: it carries a one-line
// message that already says what failed and how to fix it.
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace keyscope {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what, int exit_code = 1)
        : std::runtime_error(what), exit_code_(exit_code) {}
    int exit_code() const { return exit_code_; }

private:
    int exit_code_;
};

/// "what: strerror(err)" for a libbpf-style negative errno or errno.
inline std::string errno_text(int err) {
    return std::strerror(err < 0 ? -err : err);
}

}  // namespace keyscope
