// Integration tests need root and a BTF kernel; anywhere else they skip with
// exit code 77 and one line saying why (scripts/test refuses skips).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdio>

#include "harness.hpp"

int main(int argc, char** argv) {
    std::string why = keyscope::test::bpf_unavailable();
    if (!why.empty()) {
        std::printf("SKIP: BPF integration tests cannot run here: %s\n", why.c_str());
        return 77;
    }
    return Catch::Session().run(argc, argv);
}
