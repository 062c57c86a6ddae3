// SPDX-License-Identifier: GPL-2.0-or-later
// The state file reader: any file content loads (an empty state with a
// warning when unusable) and never throws; what loads saves and loads back.
#include "fuzz_input.h"
#include "state/state.h"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::filesystem::path dir = thintrim::fuzz::workDir() / "state";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::filesystem::path file = dir / "state.json";
    thintrim::fuzz::writeInput(data, size, "state/state.json");
    const thintrim::StateStore store(dir);
    const thintrim::StateStore::Loaded loaded = store.load();
    if (!loaded.warning) {
        store.save(loaded.state);
        if (store.load().state != loaded.state)
            std::abort();
    }
    return 0;
}
