// SPDX-License-Identifier: GPL-2.0-or-later
// The mount table readers: the input is read as mountinfo, as fstab (with a
// one-line mountinfo) and as crypttab (the doctor's check). Each reads or
// throws Error, never crashes.
#include "base/error.h"
#include "discovery/catalog.h"
#include "discovery/inventory.h"
#include "engine/diagnose.h"
#include "fuzz_input.h"

#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace thintrim;
    const SystemPaths paths = fuzz::privatePaths();
    fuzz::writeInput(data, size, "mountinfo");
    fuzz::writeInput(data, size, "fstab");
    fuzz::writeInput(data, size, "crypttab");
    try {
        (void)buildCatalog(paths, readInventory(paths));
    } catch (const Error&) {
    }
    try {
        (void)readFstab(paths.fstab);
    } catch (const Error&) {
    }
    try {
        (void)runDiagnosis(paths, {});
    } catch (const Error&) {
    }
    return 0;
}
