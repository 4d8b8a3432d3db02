// Host tests of userspace/util/cpu_affinity.{hpp,cpp}.
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <thread>

#include <vector>

#include "util/cpu_affinity.hpp"

using keyscope::cpu_list;
using keyscope::cpus_apart;
using keyscope::keep_off_server_cpus;

TEST_CASE("the daemon keeps to the CPUs no pinned server may use", "[affinity]") {
    CHECK(cpus_apart({0, 1}, {0}) == std::vector<int>{1});
    CHECK(cpus_apart({0, 1, 2, 3}, {1, 2}) == std::vector<int>{0, 3});
    // servers that may run anywhere we may, or everywhere: nothing to keep off
    CHECK(cpus_apart({0, 1}, {}).empty());
    CHECK(cpus_apart({0, 1}, {0, 1}).empty());
    CHECK(cpus_apart({2, 3}, {0, 1}).empty());
    CHECK(cpus_apart({0, 1, 2}, {0, 1, 2, 3}).empty());
}

TEST_CASE("CPU lists read as the kernel writes them", "[affinity]") {
    CHECK(cpu_list({}) == "");
    CHECK(cpu_list({0}) == "0");
    CHECK(cpu_list({0, 1, 2, 3, 6}) == "0-3,6");
    CHECK(cpu_list({1, 3, 4}) == "1,3-4");
}

TEST_CASE("unknown or unpinned servers leave the daemon where it is", "[affinity]") {
    cpu_set_t before;
    CPU_ZERO(&before);
    REQUIRE(sched_getaffinity(0, sizeof before, &before) == 0);
    CHECK(keep_off_server_cpus({0}) == "");         // pid unknown: it could run anywhere
    CHECK(keep_off_server_cpus({getpid()}) == "");  // this process: pinned to no fewer CPUs than we are
    cpu_set_t after;
    CPU_ZERO(&after);
    REQUIRE(sched_getaffinity(0, sizeof after, &after) == 0);
    CHECK(CPU_EQUAL(&before, &after));
}

TEST_CASE("a server pinned to one CPU moves the daemon to the others", "[affinity]") {
    cpu_set_t mine;
    CPU_ZERO(&mine);
    REQUIRE(sched_getaffinity(0, sizeof mine, &mine) == 0);
    if (CPU_COUNT(&mine) < 2 || !CPU_ISSET(0, &mine)) {
        WARN("needs CPU 0 and another CPU to be usable: not checked here");
        return;
    }
    pid_t server = fork();
    REQUIRE(server >= 0);
    if (server == 0) {
        cpu_set_t zero;
        CPU_ZERO(&zero);
        CPU_SET(0, &zero);
        sched_setaffinity(0, sizeof zero, &zero);
        pause();
        _exit(0);
    }
    // wait until the child has pinned itself
    cpu_set_t theirs;
    for (int i = 0; i < 1000; ++i) {
        CPU_ZERO(&theirs);
        if (sched_getaffinity(server, sizeof theirs, &theirs) == 0 && CPU_COUNT(&theirs) == 1) break;
        usleep(1000);
    }
    std::string said;
    cpu_set_t moved;
    CPU_ZERO(&moved);
    std::thread daemon([&] {  // only this thread moves
        said = keep_off_server_cpus({server});
        sched_getaffinity(0, sizeof moved, &moved);
    });
    daemon.join();
    kill(server, SIGKILL);
    waitpid(server, nullptr, 0);
    std::vector<int> rest;
    for (int c = 1; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &mine)) rest.push_back(c);
    CHECK(said == "the servers are pinned to CPU 0: keyscope keeps to CPU " + cpu_list(rest));
    CHECK_FALSE(CPU_ISSET(0, &moved));
    CHECK(CPU_COUNT(&moved) == static_cast<int>(rest.size()));
}
