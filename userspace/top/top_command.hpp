// `keyscope top`: a sampler thread (the probes themselves, or a running
// daemon's API) feeds a SnapshotBoard; the UI thread renders the model.
#pragma once

#include <string>

#include "run.hpp"

namespace keyscope {

struct TopOptions {
    RunOptions run;       // probes, targets, detection (when not --connect)
    std::string connect;  // HOST:PORT of a running daemon's --http
    bool batch = false;   // text snapshots, like top -b (also when stdout is not a terminal)
    int iterations = 0;   // batch: snapshots to print, 0 = until Ctrl-C
};

int top(const TopOptions& opts);

}  // namespace keyscope
