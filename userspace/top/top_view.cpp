#include "top/top_view.hpp"

#include <curses.h>
#include <langinfo.h>

#include <algorithm>
#include <clocale>
#include <cstdio>
#include <cstdlib>

namespace keyscope {
namespace {

constexpr int kTrendWidth = 12;

// display width of each column (KEY takes what is left)
int column_width(Column c) {
    switch (c) {
        case Column::key:
            return 16;  // minimum
        case Column::server:
            return 21;
        case Column::ops:
            return 7;
        case Column::reads:
            return 7;
        case Column::writes:
            return 8;
        case Column::p50:
            return 7;
        case Column::p99:
            return 7;
        case Column::bytes:
            return 7;
        case Column::max_value:
            return 7;
        case Column::error_pct:
            return 5;
        case Column::severity:
            return 4;
        default:
            return 0;
    }
}

const char* severity_label(int s) {
    static const char* labels[] = {"low", "med", "high", "crit"};
    return s >= 0 && s < 4 ? labels[s] : "";
}

std::string pad(std::string s, int width, bool right) {
    if (static_cast<int>(s.size()) > width) s = s.substr(0, static_cast<std::size_t>(std::max(width, 0)));
    std::string fill(static_cast<std::size_t>(width - static_cast<int>(s.size())), ' ');
    return right ? fill + s : s + fill;
}

// A key that does not fit ends in '~' so a cut is never mistaken for the key.
std::string fit_key(const std::string& key, int width) {
    if (static_cast<int>(key.size()) <= width) return pad(key, width, false);
    return key.substr(0, static_cast<std::size_t>(width - 1)) + "~";
}

int key_width(int width, const std::vector<Column>& cols) {
    int used = 0;
    for (auto c : cols)
        if (c != Column::key) used += column_width(c) + 1;
    return std::max(column_width(Column::key), width - used - (kTrendWidth + 1));
}

std::string cell(const TopRow& r, Column c) {
    int w = column_width(c);
    char buf[32];
    switch (c) {
        case Column::server:
            return pad(r.server, w, false);
        case Column::ops:
            return pad(fmt_count(r.ops, w), w, true);
        case Column::reads:
            return pad(fmt_count(r.reads, w), w, true);
        case Column::writes:
            return pad(fmt_count(r.writes, w), w, true);
        case Column::p50:
            return pad(fmt_latency_us(r.p50_us, w), w, true);
        case Column::p99:
            return pad(fmt_latency_us(r.p99_us, w), w, true);
        case Column::bytes:
            return pad(fmt_bytes(r.bytes, w), w, true);
        case Column::max_value:
            return pad(fmt_bytes(static_cast<double>(r.max_value), w), w, true);
        case Column::error_pct:
            std::snprintf(buf, sizeof buf, r.error_pct >= 99.95 ? "%.0f" : "%.1f", r.error_pct);
            return pad(buf, w, true);
        case Column::severity:
            return pad(severity_label(r.severity), w, false);
        default:
            return "";
    }
}

bool terminal_is_utf8() {
    const char* cs = nl_langinfo(CODESET);
    return cs && std::string(cs) == "UTF-8";
}

const char* page_name(TopPage p) {
    static const char* names[] = {"1 keys",    "2 prefixes", "3 slots",
                                  "4 servers", "5 hotspots", "6 mitigations"};
    return names[static_cast<int>(p)];
}

// -- drawing helpers (curses) ----------------------------------------------------

enum Pair { kLow = 1, kMedium, kHigh, kCritical, kTitle, kSelected, kBar };

int severity_attr(int sev, bool color) {
    if (!color || sev < 0) return sev >= 2 ? A_BOLD : 0;  // monochrome: bold for high and critical
    return COLOR_PAIR(kLow + sev) | (sev >= 2 ? A_BOLD : 0);
}

void put_line(int y, const std::string& s, int attr = 0) {
    if (y < 0 || y >= LINES) return;
    attron(attr);
    mvaddnstr(y, 0, s.c_str(), -1);
    attroff(attr);
    clrtoeol();
}

std::vector<std::string> wrap(const std::string& text, int width) {
    std::vector<std::string> out;
    std::string line;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto sp = text.find(' ', pos);
        std::string word = text.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos);
        pos = sp == std::string::npos ? text.size() : sp + 1;
        if (!line.empty() && static_cast<int>(line.size() + 1 + word.size()) > width) {
            out.push_back(line);
            line.clear();
        }
        line += (line.empty() ? "" : " ") + word;
    }
    if (!line.empty()) out.push_back(line);
    return out;
}

}  // namespace

std::vector<Column> visible_columns(int width) {
    // most useful first; a column is shown when it still fits next to a 16-wide key
    static const Column priority[] = {Column::ops,       Column::p99,       Column::severity, Column::reads,
                                      Column::writes,    Column::error_pct, Column::p50,      Column::bytes,
                                      Column::max_value, Column::server};
    std::vector<Column> shown = {Column::key};
    int used = column_width(Column::key) + kTrendWidth + 1;
    for (auto c : priority)
        if (used + column_width(c) + 1 <= width) {
            shown.push_back(c);
            used += column_width(c) + 1;
        }
    std::sort(shown.begin(), shown.end());
    return shown;
}

std::string table_header(const TopModel& m, int width) {
    auto cols = visible_columns(width);
    std::string out;
    for (auto c : cols) {
        std::string title = column_title(c);
        if (c == m.sort_column()) title += m.descending() ? "v" : "^";  // the sort indicator
        bool right = c != Column::key && c != Column::server && c != Column::severity;
        int w = c == Column::key ? key_width(width, cols) : column_width(c);
        out += pad(title, w, right) + " ";
    }
    out += pad("TREND 1m", kTrendWidth, false);
    return pad(out, width, false);
}

std::string table_row(const TopRow& r, int width, bool utf8) {
    auto cols = visible_columns(width);
    std::string out;
    int used = 0;
    for (auto c : cols) {
        if (c == Column::key) {
            int kw = key_width(width, cols);
            out += fit_key(r.key, kw) + " ";
            used += kw + 1;
        } else {
            out += cell(r, c) + " ";
            used += column_width(c) + 1;
        }
    }
    out += sparkline(r.trend, kTrendWidth, utf8);
    used += kTrendWidth;
    if (used < width) out += std::string(static_cast<std::size_t>(width - used), ' ');
    return out;
}

std::vector<std::string> header_lines(const TopModel& m, const UiState& ui, double now_unix, int width) {
    TopSummary s = m.summary(now_unix);
    std::vector<std::string> lines;
    std::string targets;
    for (const auto& t : s.targets) targets += (targets.empty() ? "" : " ") + t;
    lines.push_back(pad("keyscope top - " + (targets.empty() ? std::string("(waiting for data)") : targets) +
                            "  [" + ui.source + "]" + (ui.paused ? "  PAUSED" : ""),
                        width, false));
    char buf[512];
    std::snprintf(buf, sizeof buf, "ops/s %s (reads %s, writes %s)   p99 %s   errors %.2f%%",
                  fmt_count(s.ops, 7).c_str(), fmt_count(s.reads, 7).c_str(), fmt_count(s.writes, 7).c_str(),
                  fmt_latency_us(s.p99_us, 8).c_str(), s.error_pct);
    lines.push_back(pad(buf, width, false));
    std::snprintf(buf, sizeof buf, "hotspots: %d critical, %d high, %d medium, %d low", s.hotspots[3],
                  s.hotspots[2], s.hotspots[1], s.hotspots[0]);
    lines.push_back(pad(buf, width, false));
    std::string bpf =
        s.bpf_ns_per_request >= 0 ? fmt_count(s.bpf_ns_per_request, 6) + " ns/req" : "n/a (--bpf-stats)";
    std::snprintf(buf, sizeof buf,
                  "keyscope: CPU %.1f%%   BPF %s   key map %.0f%% full   unattributed %s   age %.1fs",
                  s.cpu_percent, bpf.c_str(), 100 * s.map_fill,
                  fmt_count(static_cast<double>(s.unattributed), 7).c_str(), s.age_s);
    lines.push_back(pad(buf, width, false));
    return lines;
}

std::string batch_text(const TopModel& m, const UiState& ui, double now_unix, int width, std::size_t rows) {
    std::string out;
    for (const auto& l : header_lines(m, ui, now_unix, width)) out += l + "\n";
    out += "\n" + table_header(m, width) + "\n";
    const auto& r = m.rows();
    for (std::size_t i = 0; i < r.size() && i < rows; ++i) out += table_row(r[i], width, false) + "\n";
    if (r.empty()) out += "  (no key operations in the last interval)\n";
    return out;
}

void handle_key(int key, TopModel& m, UiState& ui, int page_rows) {
    ui.message.clear();
    if (ui.editing_filter) {
        if (key == '\n' || key == KEY_ENTER) {
            ui.editing_filter = false;
            m.set_filter(ui.filter_input);
        } else if (key == 27) {
            ui.editing_filter = false;
            ui.filter_input = m.filter();
        } else if (key == KEY_BACKSPACE || key == 127 || key == 8) {
            if (!ui.filter_input.empty()) ui.filter_input.pop_back();
            m.set_filter(ui.filter_input);
        } else if (key >= 32 && key < 127) {
            ui.filter_input += static_cast<char>(key);
            m.set_filter(ui.filter_input);  // live, like htop
        }
        return;
    }
    if (ui.confirming) {
        ui.confirming = false;
        ui.message =
            key == 'y' || key == 'Y' ? ui.throttle(ui.confirm_server, ui.confirm_key) : "throttle cancelled";
        return;
    }
    if (ui.help || ui.detail) {
        // any key closes an overlay; q still quits
        if (key == 'q') ui.quit = true;
        ui.help = ui.detail = false;
        return;
    }
    switch (key) {
        case 'q':
        case 27:
            ui.quit = true;
            break;
        case KEY_UP:
        case 'k':
            m.move(-1);
            break;
        case KEY_DOWN:
        case 'j':
            m.move(1);
            break;
        case KEY_PPAGE:
            m.move(-page_rows);
            break;
        case KEY_NPAGE:
            m.move(page_rows);
            break;
        case KEY_HOME:
        case 'g':
            m.select_first();
            break;
        case KEY_END:
        case 'G':
            m.select_last();
            break;
        case '<':
        case ',':
            m.shift_sort(-1);
            break;
        case '>':
        case '.':
        case KEY_F(6):
            m.shift_sort(1);
            break;
        case 'I':
            m.invert();
            break;
        case '/':
            ui.editing_filter = true;
            ui.filter_input = m.filter();
            break;
        case '\n':
        case KEY_ENTER:
            if (ui.page == TopPage::keys && m.selected_row()) ui.detail = true;
            break;
        case 'p':
            ui.paused = !ui.paused;
            break;
        case '?':
        case 'h':
            ui.help = true;
            break;
        case '\t':
            ui.page = static_cast<TopPage>((static_cast<int>(ui.page) + 1) % 6);
            break;
        case '1':
            ui.page = TopPage::keys;
            break;
        case '2':
            ui.page = TopPage::prefixes;
            break;
        case '3':
            ui.page = TopPage::slots;
            break;
        case '4':
            ui.page = TopPage::servers;
            break;
        case '5':
            ui.page = TopPage::hotspots;
            break;
        case '6':
            ui.page = TopPage::mitigations;
            break;
        case 't': {
            const TopRow* row = m.selected_row();
            if (!ui.throttle)
                ui.message = "throttling needs the socket path (--probe socket): nothing changed";
            else if (!row)
                ui.message = "no key selected";
            else if (row->truncated)
                ui.message = "a truncated key cannot be named here: use keyscope throttle add --key";
            else {
                ui.confirming = true;
                ui.confirm_server = row->server;
                ui.confirm_key = row->key;
                ui.message = "throttle " + row->key + " on " + row->server + " to " +
                             std::to_string(kTopThrottleRate) + "/s for 10 minutes? y/n";
            }
            break;
        }
        default:
            break;
    }
}

// ---- the screen ---------------------------------------------------------------

void restore_terminal() {
    if (!isendwin()) endwin();
}

TopScreen::TopScreen() {
    std::setlocale(LC_ALL, "");
    utf8_ = terminal_is_utf8();
    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    curs_set(0);
    // NO_COLOR (no-color.org) and terminals without colours get monochrome
    const char* no_color = std::getenv("NO_COLOR");
    color_ = has_colors() && !(no_color && *no_color);
    if (color_) {
        start_color();
        use_default_colors();
        init_pair(kLow, COLOR_CYAN, -1);
        init_pair(kMedium, COLOR_YELLOW, -1);
        init_pair(kHigh, COLOR_RED, -1);
        init_pair(kCritical, COLOR_WHITE, COLOR_RED);
        init_pair(kTitle, COLOR_BLACK, COLOR_GREEN);
        init_pair(kSelected, COLOR_BLACK, COLOR_CYAN);
        init_pair(kBar, COLOR_GREEN, -1);
    }
}

TopScreen::~TopScreen() {
    restore_terminal();
}

int TopScreen::rows() const {
    return LINES;
}

int TopScreen::read_key(int timeout_ms) {
    timeout(timeout_ms);
    int ch = getch();
    return ch == ERR ? -1 : ch;
}

void TopScreen::draw(const TopModel& m, UiState& ui, double now_unix) {
    erase();  // with the single refresh() below, curses sends only what changed: no flicker
    const int width = COLS;
    int y = 0;
    for (const auto& l : header_lines(m, ui, now_unix, width)) {
        put_line(y, l, y == 0 ? A_BOLD : 0);
        ++y;
    }
    std::string tabs;
    for (int p = 0; p < 6; ++p)
        tabs += (p == static_cast<int>(ui.page) ? "[" : " ") +
                std::string(page_name(static_cast<TopPage>(p))) +
                (p == static_cast<int>(ui.page) ? "]" : " ");
    put_line(y++, tabs);
    const int footer = LINES - 1;
    const int body = std::max(footer - y - 1, 1);
    const Snapshot& snap = m.snapshot();

    if (ui.page == TopPage::keys) {
        put_line(y++, table_header(m, width), color_ ? COLOR_PAIR(kTitle) : A_REVERSE);
        const auto& rows = m.rows();
        auto sel = m.selected();
        if (sel) {
            if (*sel < ui.scroll) ui.scroll = *sel;
            if (*sel >= ui.scroll + static_cast<std::size_t>(body))
                ui.scroll = *sel - static_cast<std::size_t>(body) + 1;
        }
        if (rows.empty())
            put_line(y, "  (no key operations in the last interval" +
                            std::string(m.filter().empty() ? "" : " match the filter") + ")");
        for (std::size_t i = ui.scroll; i < rows.size() && y < footer; ++i) {
            int attr = sel && *sel == i ? (color_ ? COLOR_PAIR(kSelected) : A_REVERSE)
                                        : severity_attr(rows[i].severity, color_);
            put_line(y++, table_row(rows[i], width, utf8_), attr);
        }
    } else if (ui.page == TopPage::prefixes || ui.page == TopPage::servers) {
        char buf[512];
        if (ui.page == TopPage::prefixes) {
            put_line(y++,
                     pad("PREFIX", 30, false) + pad("SERVER", 22, false) +
                         "   OPS/s  READS/s WRITES/s  ERR/s     P99",
                     color_ ? COLOR_PAIR(kTitle) : A_REVERSE);
            if (snap.prefixes.empty())
                put_line(y, "  (no prefixes: keys have no delimiter, or --prefix-depth 0)");
            for (const auto& p : snap.prefixes) {
                if (y >= footer) break;
                double secs = snap.interval_s > 0 ? snap.interval_s : 1;
                std::snprintf(buf, sizeof buf, "%s%s %7s  %7s  %7s %6s %7s", pad(p.name, 30, false).c_str(),
                              pad(p.server, 22, false).c_str(),
                              fmt_count((p.reads + p.writes) / secs, 7).c_str(),
                              fmt_count(p.reads / secs, 7).c_str(), fmt_count(p.writes / secs, 7).c_str(),
                              fmt_count(p.errors / secs, 6).c_str(), fmt_latency_us(p.p99_us, 7).c_str());
                put_line(y++, buf);
            }
        } else {
            put_line(y++,
                     pad("SERVER", 24, false) + "  PROTO   REQ/s  KEYOPS/s  ERRORS   P99   UNATTR  PARSE-ERR",
                     color_ ? COLOR_PAIR(kTitle) : A_REVERSE);
            for (const auto& s : snap.servers) {
                if (y >= footer) break;
                double secs = snap.interval_s > 0 ? snap.interval_s : 1;
                std::snprintf(buf, sizeof buf, "%s  %-5s %7s  %8s  %6s %6s  %7s  %9s",
                              pad(s.server, 24, false).c_str(), s.proto.c_str(),
                              fmt_count(s.interval.requests / secs, 7).c_str(),
                              fmt_count(s.interval.key_ops / secs, 8).c_str(),
                              fmt_count(static_cast<double>(s.interval.errors), 6).c_str(),
                              fmt_latency_us(s.p99_us, 6).c_str(),
                              fmt_count(static_cast<double>(s.interval.unattributed), 7).c_str(),
                              fmt_count(static_cast<double>(s.interval.parse_errors), 9).c_str());
                put_line(y++, buf);
            }
        }
    } else if (ui.page == TopPage::slots) {
        // a heat map: each cell covers 16384 / cells slots, darker = busier
        static const char shades[] = " .:-=+*#%@";
        std::vector<double> ops(16384, 0);
        for (const auto& s : snap.slots) {
            int slot = std::atoi(s.name.c_str());
            if (slot >= 0 && slot < 16384)
                ops[static_cast<std::size_t>(slot)] += static_cast<double>(s.reads + s.writes);
        }
        int cols = std::max(width - 8, 16), lines = std::max(std::min(body - 12, 16), 4);
        int cells = cols * lines;
        double per = 16384.0 / cells, hi = 0;
        std::vector<double> heat(static_cast<std::size_t>(cells), 0);
        for (int sl = 0; sl < 16384; ++sl)
            heat[static_cast<std::size_t>(std::min(cells - 1, static_cast<int>(sl / per)))] +=
                ops[static_cast<std::size_t>(sl)];
        for (double h : heat) hi = std::max(hi, h);
        put_line(y++, "cluster slots 0-16383, " + std::to_string(static_cast<int>(per + 0.999)) +
                          " per cell; busiest cell = @");
        for (int l = 0; l < lines && y < footer; ++l) {
            std::string row;
            char label[16];
            std::snprintf(label, sizeof label, "%5d  ", static_cast<int>(l * cols * per));
            row += label;
            for (int c = 0; c < cols; ++c) {
                double h = heat[static_cast<std::size_t>(l * cols + c)];
                int lvl = hi > 0 && h > 0 ? 1 + static_cast<int>(h / hi * 8.999) : 0;
                row += shades[std::min(lvl, 9)];
            }
            put_line(y++, row);
        }
        auto top = snap.slots;
        std::sort(top.begin(), top.end(), [](const EntityRow& a, const EntityRow& b) {
            return a.reads + a.writes > b.reads + b.writes;
        });
        put_line(y++, "");
        put_line(y++, "busiest slots:", A_BOLD);
        double secs = snap.interval_s > 0 ? snap.interval_s : 1;
        for (std::size_t i = 0; i < top.size() && i < 8 && y < footer; ++i)
            put_line(y++, "  slot " + pad(top[i].name, 6, true) + "  " +
                              fmt_count((top[i].reads + top[i].writes) / secs, 7) + " ops/s  " +
                              top[i].server);
    } else if (ui.page == TopPage::hotspots) {
        if (snap.hotspots.empty()) put_line(y, "  no active hotspots");
        for (const auto& h : snap.hotspots) {
            if (y >= footer) break;
            int sev = h.severity == "critical" ? 3
                      : h.severity == "high"   ? 2
                      : h.severity == "medium" ? 1
                                               : 0;
            put_line(y++,
                     pad(h.severity, 9, false) + pad(h.kind, 8, false) + h.entity + " " + h.name + " @ " +
                         h.server + ": " + h.detail,
                     severity_attr(sev, color_));
            for (const auto& a : h.recommended_actions)
                for (const auto& l : wrap("- " + a, width - 6)) {
                    if (y >= footer) break;
                    put_line(y++, "      " + l);
                }
        }
    } else {
        put_line(y++,
                 "automatic mitigation: " + snap.act_mode +
                     "   (t throttles the selected key; keyscope throttle add|rm)",
                 A_BOLD);
        if (snap.mitigations.empty())
            put_line(y++, "  no mitigation rules: keyscope drops and delays nothing.");
        else
            put_line(y++,
                     pad("ID", 5, true) + "  " + pad("MODE", 8, false) + pad("ORIGIN", 7, false) +
                         pad("ACTION", 16, false) + pad("MATCHES", 34, false) + pad("DROPPED", 10, true) +
                         pad("WOULD", 10, true) + "  SERVER",
                     A_BOLD);
        for (const auto& r : snap.mitigations) {
            if (y >= footer) break;
            char act[32];
            if (r.action == "throttle")
                std::snprintf(act, sizeof act, "throttle %.0f/s", r.rate);
            else
                std::snprintf(act, sizeof act, "shed %.0f%%", r.shed * 100);
            std::string what = r.match + (r.target.empty() ? "" : " " + r.target) +
                               (r.client.empty() ? "" : " client " + r.client);
            put_line(y++, pad(std::to_string(r.id), 5, true) + "  " + pad(r.mode, 8, false) +
                              pad(r.origin, 7, false) + pad(act, 16, false) + pad(what, 34, false) +
                              fmt_count(static_cast<double>(r.dropped), 10) +
                              fmt_count(static_cast<double>(r.would_drop), 10) + "  " + r.server);
        }
    }

    // overlays
    auto box_lines = [&](const std::vector<std::string>& lines) {
        int w = std::min(width - 4, 100), h = std::min(static_cast<int>(lines.size()) + 2, LINES - 2);
        int top = std::max((LINES - h) / 2, 0), left = std::max((width - w) / 2, 0);
        for (int i = 0; i < h; ++i) {
            std::string text = i == 0 || i == h - 1 ? std::string(static_cast<std::size_t>(w), '-')
                                                    : "| " +
                                                          pad(i - 1 < static_cast<int>(lines.size())
                                                                  ? lines[static_cast<std::size_t>(i - 1)]
                                                                  : "",
                                                              w - 4, false) +
                                                          " |";
            attron(A_BOLD);
            mvaddnstr(top + i, left, text.c_str(), w);
            attroff(A_BOLD);
        }
    };
    if (ui.help) {
        box_lines({"keyscope top - keys", "",
                   "Up/Down j/k  select        PgUp/PgDn Home/End  page, first, last",
                   "< > F6       sort column   I  invert sort      /  filter keys (Enter keep, Esc cancel)",
                   "Enter        key details   p  pause            Tab 1-6  keys, prefixes, slots, servers,",
                   "                                                        hotspots, mitigations",
                   "t            throttle the selected key         q Esc Ctrl-C  quit", "",
                   "any key closes this help"});
    } else if (ui.detail && m.selected_row()) {
        const TopRow& r = *m.selected_row();
        std::vector<std::string> lines = {"key    " + r.key + (r.truncated ? "  (truncated)" : ""),
                                          "server " + r.server};
        lines.push_back("ops/s " + fmt_count(r.ops, 8) + "  reads/s " + fmt_count(r.reads, 8) +
                        "  writes/s " + fmt_count(r.writes, 8) + "  error " + cell(r, Column::error_pct) +
                        "%");
        lines.push_back("p50 " + fmt_latency_us(r.p50_us, 8) + "  p99 " + fmt_latency_us(r.p99_us, 8) +
                        "  largest value " + fmt_bytes(static_cast<double>(r.max_value), 8) + "B");
        lines.push_back("");
        lines.push_back("latency (last interval):");
        // power-of-two rows from the log-linear buckets: 4 buckets per octave
        std::uint64_t hi = 0;
        std::vector<std::uint64_t> octave(KS_LAT_OCTAVES + 1, 0);
        octave[0] = r.lat[0];
        for (int b = 1; b < KS_LAT_BUCKETS; ++b)
            octave[static_cast<std::size_t>(1 + (b - 1) / 4)] += r.lat[static_cast<std::size_t>(b)];
        int first = -1, last = -1;
        for (std::size_t o = 0; o < octave.size(); ++o)
            if (octave[o]) {
                hi = std::max(hi, octave[o]);
                if (first < 0) first = static_cast<int>(o);
                last = static_cast<int>(o);
            }
        for (int o = std::max(first, 0); first >= 0 && o <= last; ++o) {
            double lo_us = o == 0 ? 0 : static_cast<double>(1ULL << (KS_LAT_MIN_LOG2 + o - 1)) / 1000.0;
            int bar = hi ? static_cast<int>(40.0 * static_cast<double>(octave[static_cast<std::size_t>(o)]) /
                                            static_cast<double>(hi))
                         : 0;
            lines.push_back("  >=" + pad(fmt_latency_us(lo_us > 0 ? lo_us : 0.001, 8), 8, true) + " " +
                            std::string(static_cast<std::size_t>(bar), '#') + " " +
                            std::to_string(octave[static_cast<std::size_t>(o)]));
        }
        lines.push_back("");
        // counted in the kernel only while the key is hot, on the socket path
        const std::vector<ClientShare>* clients = nullptr;
        for (const auto& k : snap.keys)
            if (k.server == r.server && k.key == r.key) clients = &k.clients;
        if (!clients || clients->empty()) {
            lines.push_back("top clients: counted while the key is hot (socket path); none yet");
        } else {
            std::uint64_t all = 0;
            for (const auto& c : *clients) all += c.ops;
            double secs = snap.interval_s > 0 ? snap.interval_s : 1;
            lines.push_back("top clients (last interval):");
            for (std::size_t i = 0; i < clients->size() && i < 5; ++i) {
                const auto& c = (*clients)[i];
                char share[32];
                std::snprintf(share, sizeof share, "%5.1f%%",
                              100.0 * static_cast<double>(c.ops) / static_cast<double>(all));
                lines.push_back("  " + pad(c.client.empty() ? "(unknown)" : c.client, 40, false) +
                                fmt_count(static_cast<double>(c.ops) / secs, 8) + " ops/s " + share);
            }
        }
        auto hist = m.history(r.server, r.key);
        lines.push_back("hotspot history:" + std::string(hist.empty() ? " none" : ""));
        for (const auto& h : hist) lines.push_back("  " + h);
        for (const auto& h : snap.hotspots)
            if (h.entity == "key" && h.name == r.key && h.server == r.server)
                for (const auto& a : h.recommended_actions) lines.push_back("  do: " + a);
        lines.push_back("");
        lines.push_back("any key closes");
        box_lines(lines);
    }
    std::string status = ui.editing_filter ? "filter: " + ui.filter_input + "_"
                         : !ui.message.empty()
                             ? ui.message
                             : "? help  q quit  / filter" +
                                   (m.filter().empty() ? std::string() : " [" + m.filter() + "]") +
                                   "  < > sort  Enter details  Tab views  p pause";
    put_line(footer, pad(status, width, false), A_REVERSE);
    refresh();
}

}  // namespace keyscope
