// Drawing `keyscope top`: pure text layout (also used by batch mode and
// testable without a terminal) and the ncurses screen that paints it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "top/top_model.hpp"

namespace keyscope {

/// What the UI shows besides the data.
struct UiState {
    TopPage page = TopPage::keys;
    bool detail = false, help = false, paused = false;
    bool editing_filter = false;
    std::string filter_input;
    std::string message;  // one-line notice in the status bar
    std::size_t scroll = 0;
    std::string source;  // "probes" or "daemon at HOST:PORT"
    /// Throttles a key (server, key as shown) and says what happened; empty: not possible here.
    std::function<std::string(const std::string&, const std::string&)> throttle;
    bool confirming = false;  // `t` asked "throttle ...? y/n"
    std::string confirm_server, confirm_key;
    bool quit = false;
};

/// Columns that fit in `width`, in display order (KEY always first).
std::vector<Column> visible_columns(int width);
/// The table's title line and one row, exactly `width` characters (UTF-8 sparkline counted as one).
std::string table_header(const TopModel& m, int width);
std::string table_row(const TopRow& r, int width, bool utf8);
/// Header lines (targets, totals, hotspots, keyscope's cost).
std::vector<std::string> header_lines(const TopModel& m, const UiState& ui, double now_unix, int width);
/// One batch snapshot: header, then the key table (at most `rows` rows).
std::string batch_text(const TopModel& m, const UiState& ui, double now_unix, int width, std::size_t rows);

/// Applies one key press (ncurses key code) to the model and UI state.
void handle_key(int key, TopModel& m, UiState& ui, int page_rows);

/// The ncurses screen; restores the terminal when destroyed.
class TopScreen {
public:
    TopScreen();
    ~TopScreen();
    TopScreen(const TopScreen&) = delete;
    TopScreen& operator=(const TopScreen&) = delete;
    /// A key code, or -1 after `timeout_ms` without one.
    int read_key(int timeout_ms);
    void draw(const TopModel& m, UiState& ui, double now_unix);
    int rows() const;

private:
    bool color_ = false, utf8_ = false;
};

/// Puts the terminal back (safe to call twice; used by signal handlers too).
void restore_terminal();

}  // namespace keyscope
