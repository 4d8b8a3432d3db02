// `keyscope top` in a real terminal: tmux runs a shell, the shell runs top
// against a real redis-server with one hot key; capture-pane reads the screen.
#include <catch2/catch.hpp>
#include <cstdio>
#include <sstream>

#include "harness.hpp"

using namespace keyscope::test;

namespace {

std::string sh(const std::string& cmd) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
    return out;
}

class Tmux {
public:
    Tmux() : name_("kstop" + std::to_string(getpid())) {
        sh("tmux kill-session -t " + name_ + " 2>/dev/null");
        sh("tmux new-session -d -s " + name_ +
           " -x 120 -y 40 'env TERM=xterm-256color bash --norc --noprofile'");
    }
    ~Tmux() { sh("tmux kill-session -t " + name_ + " 2>/dev/null"); }
    void keys(const std::string& k) { sh("tmux send-keys -t " + name_ + " " + k); }
    std::string screen() { return sh("tmux capture-pane -p -t " + name_); }
    /// The screen once `pred` holds, or the last one after `secs`.
    template <class Pred>
    std::string wait_for(Pred pred, double secs = 10) {
        std::string s;
        for (int i = 0; i < secs * 10; ++i) {
            s = screen();
            if (pred(s)) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return s;
    }

private:
    std::string name_;
};

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string l;
    while (std::getline(in, l)) out.push_back(l);
    return out;
}

// The key table's rows: the lines after the title line that starts with "KEY".
std::vector<std::string> table_rows(const std::string& screen) {
    auto ls = lines_of(screen);
    std::vector<std::string> rows;
    bool in = false;
    for (const auto& l : ls) {
        if (l.rfind("KEY", 0) == 0) {
            in = true;
            continue;
        }
        if (in && (l.rfind("? help", 0) == 0 || l.rfind("filter:", 0) == 0)) break;
        if (in && !l.empty() && l[0] != ' ') rows.push_back(l);
    }
    return rows;
}

std::string header_of(const std::string& screen) {
    for (const auto& l : lines_of(screen))
        if (l.rfind("KEY", 0) == 0) return l;
    return "";
}

}  // namespace

TEST_CASE("keyscope top in tmux: hot key first, sort, filter, quit leaves the shell usable", "[top]") {
    RedisServer redis;
    PacedLoad hot(redis.port(), 3000, [](std::uint64_t) { return resp_command({"GET", "hot:top"}); });
    PacedLoad bg(redis.port(), 1000, [](std::uint64_t i) {
        return resp_command({"GET", "bg:" + std::to_string(i % 50)});
    });
    Tmux t;
    t.keys(std::string("'") + KEYSCOPE_BIN +
           " top --interval 500ms -t redis://127.0.0.1:" + std::to_string(redis.port()) + "' Enter");

    // the hot key is the first row, with a plausible rate
    std::string s = t.wait_for([](const std::string& scr) {
        auto rows = table_rows(scr);
        return !rows.empty() && rows[0].rfind("hot:top", 0) == 0;
    });
    INFO(s);
    auto rows = table_rows(s);
    REQUIRE(!rows.empty());
    CHECK(rows[0].rfind("hot:top", 0) == 0);
    {
        std::istringstream in(rows[0]);
        std::string key, server;
        double ops = 0;
        in >> key >> server >> ops;
        CHECK(ops > 2400);
        CHECK(ops < 3600);
    }
    CHECK(header_of(s).find("OPS/sv") != std::string::npos);  // the sort indicator

    // sort by key (two columns to the left of OPS/s), ascending: bg:* first
    t.keys("'<'");
    t.keys("'<'");
    s = t.wait_for([](const std::string& scr) { return header_of(scr).find("KEY^") != std::string::npos; });
    INFO(s);
    rows = table_rows(s);
    REQUIRE(!rows.empty());
    CHECK(rows[0].rfind("bg:", 0) == 0);

    // the filter hides the other keys
    t.keys("/ h o t Enter");
    s = t.wait_for([](const std::string& scr) { return table_rows(scr).size() == 1; });
    INFO(s);
    rows = table_rows(s);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].rfind("hot:top", 0) == 0);

    // Enter: the detail panel names the client driving the hot key (counted while it is hot)
    t.keys("Enter");
    s = t.wait_for(
        [](const std::string& scr) { return scr.find("top clients (last interval)") != std::string::npos; });
    INFO(s);
    CHECK(s.find("top clients (last interval)") != std::string::npos);
    CHECK(s.find("127.0.0.1") != std::string::npos);
    CHECK(s.find("100.0%") != std::string::npos);
    t.keys("Space");  // any key closes the panel

    // t throttles the selected key after a y, and page 6 lists the rule
    t.keys("t");
    s = t.wait_for([](const std::string& scr) { return scr.find("y/n") != std::string::npos; });
    INFO(s);
    CHECK(s.find("throttle hot:top on 127.0.0.1:") != std::string::npos);
    t.keys("y");
    s = t.wait_for([](const std::string& scr) { return scr.find("rule 1 added") != std::string::npos; });
    INFO(s);
    CHECK(s.find("rule 1 added") != std::string::npos);
    t.keys("6");
    s = t.wait_for([](const std::string& scr) { return scr.find("throttle 500/s") != std::string::npos; });
    INFO(s);
    CHECK(s.find("key hot:top") != std::string::npos);
    CHECK(s.find("manual") != std::string::npos);

    // q quits and the shell works again, with the terminal back in cooked mode
    t.keys("q");
    t.keys(
        "'stty -a | tr -s \" ;\" \"\\n\" | grep -x -e echo -e icanon | tr \"\\n\" + ; echo END-$((40+2))' "
        "Enter");
    s = t.wait_for([](const std::string& scr) { return scr.find("END-42") != std::string::npos; });
    INFO(s);
    std::string result;  // the output line, not the echoed command
    for (const auto& l : lines_of(s))
        if (l.find("+END-42") != std::string::npos && l.find("$((") == std::string::npos) result = l;
    CHECK(result.find("icanon+") != std::string::npos);
    CHECK(result.find("echo+") != std::string::npos);
    CHECK(sh("bpftool prog show | grep -c ' name ks_' || true").substr(0, 1) == "0");
}

TEST_CASE("keyscope top --connect prints batch snapshots of a running daemon", "[top]") {
    RedisServer redis;
    const int http_port = free_port();
    Daemon d({"--target", "redis://127.0.0.1:" + std::to_string(redis.port()), "--interval", "500ms",
              "--http", "127.0.0.1:" + std::to_string(http_port)});
    PacedLoad hot(redis.port(), 2000, [](std::uint64_t) { return resp_command({"GET", "hot:api"}); });
    PacedLoad bg(redis.port(), 500, [](std::uint64_t i) {
        return resp_command({"GET", "bg:" + std::to_string(i % 20)});
    });
    d.lines_for(std::chrono::milliseconds(1500));
    // piped: batch mode without -b
    std::string out = sh(std::string(KEYSCOPE_BIN) + " top --connect 127.0.0.1:" + std::to_string(http_port) +
                         " --interval 500ms -n 2 2>&1");
    INFO(out);
    auto rows = table_rows(out);
    REQUIRE(rows.size() >= 2);
    CHECK(rows[0].rfind("hot:api", 0) == 0);
    CHECK(out.find("[daemon at 127.0.0.1:" + std::to_string(http_port) + "]") != std::string::npos);
    d.lines_for(std::chrono::milliseconds(100));

    // nobody there: one line, non-zero exit
    int dead = free_port();
    std::string err = sh(std::string(KEYSCOPE_BIN) + " top --connect 127.0.0.1:" + std::to_string(dead) +
                         " -n 1 2>&1; echo rc=$?");
    INFO(err);
    CHECK(err.find("error: --connect 127.0.0.1:" + std::to_string(dead)) == 0);
    CHECK(err.find("rc=1") != std::string::npos);
}
