// The message of the keyscope::Error a callable throws, for asserting on it.
#pragma once

#include <string>

#include "util/error.hpp"

namespace keyscope::test {

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const keyscope::Error& e) {
        return e.what();
    } catch (...) {
        return "<another exception>";
    }
    return "<no exception>";
}

}  // namespace keyscope::test
