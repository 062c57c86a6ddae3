// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "bus_objects.h"
#include "catalog.h"

#include <vector>

namespace thintrim::daemon {

// What the checks look at: the daemon's current view of the system.
struct DiagnoseInput {
    const std::vector<CatalogEntry>& catalog;
};

// One check of the discard chain. Each appends its findings; adding a check
// is adding a function to the list in diagnose.cpp.
using DiagnoseCheck = void (*)(const DiagnoseInput& input, std::vector<Finding>& findings);

// Runs every check in order.
[[nodiscard]] std::vector<Finding> runDiagnosis(const DiagnoseInput& input);

} // namespace thintrim::daemon
