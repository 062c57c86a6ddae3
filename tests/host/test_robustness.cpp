// SPDX-License-Identifier: GPL-2.0-or-later
// Mutated fixtures: every parser of host input either parses or throws
// thintrim::Error, never crashes or throws anything else (run under ASan
// and UBSan by packaging/dev.sh test).
#include "base/error.h"
#include "catch.h"
#include "qemu_process.h"
#include "test_support.h"
#include "vm_config.h"
#include "xml.h"

#include <random>

using namespace thintrim;
using namespace thintrim::host;
using thintrim::host::test::readData;

namespace {

std::string mutate(std::string text, std::mt19937& random) {
    std::uniform_int_distribution<int> kind(0, 3);
    const int edits = 1 + static_cast<int>(random() % 8);
    for (int i = 0; i < edits && !text.empty(); ++i) {
        const std::size_t at = random() % text.size();
        switch (kind(random)) {
        case 0:
            text[at] = static_cast<char>(random() % 256);
            break;
        case 1:
            text.erase(at, 1 + random() % 16);
            break;
        case 2:
            text.insert(at, std::string(1 + random() % 4, "<>&;=,{}\"'\n\0"[random() % 12]));
            break;
        default:
            text.resize(at);
            break;
        }
    }
    return text;
}

template <typename Parse>
void survives(const std::string& original, Parse parse) {
    std::mt19937 random(20261206);
    for (int round = 0; round < 3000; ++round) {
        const std::string text = mutate(original, random);
        try {
            parse(text);
        } catch (const Error&) {
        }
    }
}

} // namespace

TEST_CASE("mutated libvirt XML parses or is refused with an Error") {
    for (const char* file : {"libvirt/web2.xml", "libvirt/db2.xml"}) {
        INFO(file);
        survives(readData(file), [](const std::string& text) {
            (void)parseLibvirtDomain(parseXml(text, "mutated.xml"));
        });
    }
}

TEST_CASE("mutated Proxmox files parse or are refused with an Error") {
    survives(readData("pve/storage.cfg"), [](const std::string& text) {
        const auto storages = parsePveStorageConfig(text, "mutated");
        for (const char* volume : {"local:100/a.qcow2", "local-lvm:b/c", "local-zfs:x", "y"})
            (void)resolvePveVolume(storages, volume);
    });
    survives(readData("pve/qemu-server/102.conf"), [](const std::string& text) {
        const auto config = parsePveVmConfig(text, "102");
        for (const auto& drive : config.drives)
            (void)drive.withOption("discard", "on");
    });
}

TEST_CASE("mutated QEMU command lines parse or are refused with an Error") {
    for (const char* file : {"proc/15759/cmdline", "proc/2103/cmdline", "proc/3001/cmdline"}) {
        INFO(file);
        survives(readData(file), [](const std::string& text) {
            (void)parseQemuCommandLine(1, splitCommandLine(text));
        });
    }
}
