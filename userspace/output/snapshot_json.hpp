// The whole Snapshot as JSON and back: what /api/snapshot serves and what
// `keyscope top --connect` reads, so both views render the same model.
#pragma once

#include <nlohmann/json.hpp>

#include "output/snapshot.hpp"

namespace keyscope {

nlohmann::json snapshot_to_json(const Snapshot& s);
/// Throws keyscope::Error with a one-line message on a malformed document.
Snapshot snapshot_from_json(const nlohmann::json& j);

}  // namespace keyscope
