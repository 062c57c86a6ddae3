// SPDX-License-Identifier: GPL-2.0-or-later
#include "engine/diagnose.h"

#include "base/error.h"
#include "discovery/btrfs_discard.h"
#include "discovery/inventory.h"
#include "stack/dm_thin.h"
#include "state/state.h"
#include "trim/receipts.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <system_error>

#include <fmt/format.h>
#include <libmount.h>

namespace thintrim {

namespace {

namespace fs = std::filesystem;

using Findings = std::vector<Finding>;

// What every check reads. Files are read by the check that needs them.
struct DiagnoseInput {
    const SystemPaths& paths;
    const std::vector<CatalogEntry>& catalog;
};

// The lines of a text file; nullopt when it does not exist. A file that
// exists but cannot be read becomes a warning about that file, so a check
// never reports "all fine" on a file it could not see.
std::optional<std::vector<std::string>> readLines(const fs::path& path, Findings& findings) {
    std::error_code ec;
    if (!fs::exists(path, ec))
        return std::nullopt;
    std::ifstream file(path);
    if (!file) {
        findings.push_back({Severity::Warning, path.string(),
                            fmt::format("cannot read {}: {}", path.string(), std::strerror(errno)),
                            "run thintrim doctor as root"});
        return std::nullopt;
    }
    std::vector<std::string> lines;
    for (std::string line; std::getline(file, line);)
        lines.push_back(std::move(line));
    return lines;
}

// Whitespace-separated fields of a line, up to a '#' comment.
std::vector<std::string> fieldsOf(const std::string& line) {
    std::istringstream stream(line.substr(0, line.find('#')));
    std::vector<std::string> fields;
    for (std::string field; stream >> field;)
        fields.push_back(std::move(field));
    return fields;
}

// Every managed filesystem: does its block stack pass discards? The verdict's
// reason names the layer at fault and the fix.
void checkBlockStacks(const DiagnoseInput& input, Findings& findings) {
    for (const CatalogEntry& entry : input.catalog) {
        if (!entry.mount.isManaged())
            continue;
        const std::string& mountPoint = entry.mount.mountPoint;
        if (entry.eligible())
            findings.push_back({Severity::Ok, mountPoint, entry.reason(), ""});
        else
            findings.push_back(
                {Severity::Error, mountPoint,
                 fmt::format("discards do not reach the disk: {}", entry.reason()),
                 fmt::format("fix the layer named above; `thintrim stack {}` shows every layer",
                             mountPoint)});
    }
}

// Continuous discard (`-o discard`, btrfs `discard=async`) already returns
// space as files are deleted; reported so a person knows why trims find little.
void checkContinuousDiscard(const DiagnoseInput& input, Findings& findings) {
    for (const CatalogEntry& entry : input.catalog) {
        const Mount& mount = entry.mount;
        if (!mount.isManaged() || !(hasMountOption(mount.fsOptions, "discard") ||
                                    hasMountOption(mount.vfsOptions, "discard")))
            continue;
        if (auto async = btrfsAsyncDiscard(input.paths, mount)) {
            findings.push_back(
                {Severity::Info, mount.mountPoint,
                 fmt::format("{} is {}", mount.mountPoint, btrfsAsyncSentence(*async)),
                 "nothing to change: thintrim still trims it on schedule"});
            continue;
        }
        findings.push_back(
            {Severity::Info, mount.mountPoint,
             fmt::format("{} is mounted with continuous discard: {} discards blocks as files are "
                         "deleted, so periodic trims mostly find nothing left to do",
                         mount.mountPoint, mount.fsType),
             "nothing to change: thintrim still trims it on schedule and catches what continuous "
             "discard skipped; remove `discard` from its mount options only if its latency "
             "shows"});
    }
}

// Thin pools inside the guest that free their blocks but pass nothing down:
// sysfs shows a stack that passes discards, only the dm table tells.
void checkThinPools(const DiagnoseInput& input, Findings& findings) {
    const DmReader reader = systemDmReader(input.paths);
    for (const CatalogEntry& entry : input.catalog) {
        if (!entry.mount.isManaged() || !entry.stack)
            continue;
        for (const SwallowingThinPool& pool : findSwallowingThinPools(*entry.stack, reader)) {
            findings.push_back(
                {Severity::Error, entry.mount.mountPoint,
                 fmt::format("discards do not reach the virtual disk: {}", pool.sentence()),
                 pool.fix()});
        }
    }
}

// Network filesystems cannot pass discards at all; say so once per mount.
void checkNetworkFilesystems(const DiagnoseInput& input, Findings& findings) {
    for (const CatalogEntry& entry : input.catalog) {
        if (entry.mount.skipReason != SkipReason::Network)
            continue;
        findings.push_back({Severity::Info, entry.mount.mountPoint,
                            fmt::format("{} is a network filesystem ({}): discards cannot travel "
                                        "over the network protocol",
                                        entry.mount.mountPoint, entry.mount.fsType),
                            "trim on the file server instead"});
    }
}

// The device an fstab source names: a path, or a UUID=/LABEL=/PARTUUID= tag
// resolved through /dev/disk/by-*.
std::optional<DeviceNumber> fstabDevice(const SystemPaths& paths, const std::string& source) {
    std::unique_ptr<char, decltype(&std::free)> resolved(mnt_resolve_spec(source.c_str(), nullptr),
                                                         &std::free);
    return deviceNumberOf(paths, resolved ? std::string_view(resolved.get()) : source);
}

// Swap on a discard-capable device without `discard`: pages the kernel
// stops using stay allocated on the virtual disk until they are overwritten.
void checkSwap(const DiagnoseInput& input, Findings& findings) {
    auto lines = readLines(input.paths.swaps, findings);
    if (!lines)
        return;
    std::vector<FstabEntry> fstab;
    try {
        fstab = readFstab(input.paths.fstab);
    } catch (const Error& e) {
        findings.push_back({Severity::Warning, input.paths.fstab.string(), e.what(), ""});
        return;
    }
    for (std::size_t index = 1; index < lines->size(); ++index) { // line 0 is the header
        const std::vector<std::string> fields = fieldsOf((*lines)[index]);
        // Swap files get their discards through the filesystem they live in.
        if (fields.size() < 2 || fields[1] != "partition")
            continue;
        const std::string& device = fields[0];
        const std::optional<DeviceNumber> number = deviceNumberOf(input.paths, device);
        if (!number)
            continue;
        try {
            if (!walkBlockStack(input.paths, {*number}).verdict.eligible)
                continue;
        } catch (const Error&) {
            continue;
        }
        auto entry = std::find_if(fstab.begin(), fstab.end(), [&](const FstabEntry& candidate) {
            return candidate.fsType == "swap" &&
                   fstabDevice(input.paths, candidate.source) == number;
        });
        if (entry == fstab.end())
            findings.push_back(
                {Severity::Warning, device,
                 fmt::format("swap on {} is active but not listed in {}: whether it discards "
                             "freed pages depends on how it was enabled",
                             device, input.paths.fstab.string()),
                 fmt::format("enable it with `swapon --discard {}`, or list it in {} with the "
                             "`discard` option",
                             device, input.paths.fstab.string())});
        else if (!hasMountOption(entry->options, "discard"))
            findings.push_back(
                {Severity::Warning, device,
                 fmt::format("swap on {} can discard but {} does not enable it: pages the kernel "
                             "frees stay allocated on the virtual disk",
                             device, input.paths.fstab.string()),
                 fmt::format("add `discard` to its options in {} ({} swap {}), then `swapoff {} "
                             "&& swapon -a`",
                             input.paths.fstab.string(), entry->source,
                             entry->options.empty() ? "discard" : entry->options + ",discard",
                             device)});
        else
            findings.push_back(
                {Severity::Ok, device, fmt::format("swap on {} discards freed pages", device), ""});
    }
}

// A crypttab entry without `discard` is opened without --allow-discards at
// boot: dm-crypt then drops every discard from the layers above.
void checkCrypttab(const DiagnoseInput& input, Findings& findings) {
    const fs::path& path = input.paths.crypttab;
    auto lines = readLines(path, findings);
    if (!lines)
        return;
    unsigned entries = 0;
    unsigned without = 0;
    for (std::size_t index = 0; index < lines->size(); ++index) {
        const std::vector<std::string> fields = fieldsOf((*lines)[index]);
        if (fields.empty())
            continue;
        ++entries;
        const std::string options = fields.size() >= 4 ? fields[3] : "";
        if (hasMountOption(options, "discard"))
            continue;
        ++without;
        const std::string& name = fields[0];
        findings.push_back(
            {Severity::Warning, path.string(),
             fmt::format("line {}: {} is opened without `discard`: dm-crypt drops every trim of "
                         "the filesystems on it (unless its LUKS2 header carries the "
                         "allow-discards flag)",
                         index + 1, name),
             fmt::format("add `discard` to the 4th field of that line ({}), update the initramfs "
                         "if it holds the root filesystem (update-initramfs -u); to apply it now: "
                         "`cryptsetup refresh --allow-discards {}`, then reload the tables of "
                         "the LVM volumes on it (`dmsetup reload LV --table \"$(dmsetup table "
                         "LV)\" && dmsetup resume LV`; `lvchange --refresh` does not)",
                         options.empty() ? "luks,discard" : options + ",discard", name)});
    }
    if (entries > 0 && without == 0)
        findings.push_back({Severity::Ok, path.string(),
                            fmt::format("every entry ({}) passes discards", entries), ""});
}

bool usesLvm(const std::vector<CatalogEntry>& catalog) {
    return std::any_of(catalog.begin(), catalog.end(), [](const CatalogEntry& entry) {
        return entry.stack && std::any_of(entry.stack->layers.begin(), entry.stack->layers.end(),
                                          [](const Layer& layer) {
                                              return layer.kind == LayerKind::Lvm ||
                                                     layer.kind == LayerKind::Thin;
                                          });
    });
}

// issue_discards only matters when a logical volume is removed or shrunk:
// without it the freed extents stay allocated on the virtual disk.
void checkLvmConfig(const DiagnoseInput& input, Findings& findings) {
    if (!usesLvm(input.catalog))
        return;
    const fs::path& path = input.paths.lvmConfig;
    std::optional<std::string> value;
    if (auto lines = readLines(path, findings)) {
        for (const std::string& line : *lines) {
            std::string text = line.substr(0, line.find('#'));
            const auto equals = text.find('=');
            if (equals == std::string::npos)
                continue;
            std::vector<std::string> key = fieldsOf(text.substr(0, equals));
            std::vector<std::string> assigned = fieldsOf(text.substr(equals + 1));
            if (key.size() == 1 && key[0] == "issue_discards" && !assigned.empty())
                value = assigned[0];
        }
    }
    const std::string subject = path.string();
    if (value == "1") {
        findings.push_back({Severity::Ok, subject,
                            "issue_discards = 1: removed logical volumes are discarded", ""});
        return;
    }
    findings.push_back(
        {Severity::Info, subject,
         fmt::format("issue_discards is {} (LVM's default is 0): space freed by lvremove or "
                     "lvreduce stays allocated on the virtual disk (trims of mounted "
                     "filesystems are not affected)",
                     value ? *value : "not set"),
         fmt::format("set `issue_discards = 1` in the devices section of {}", subject)});
}

// fstrim.timer and thintrimd trimming the same filesystems is double work,
// and fstrim's run ignores thintrim's rate limit.
void checkFstrimTimer(const DiagnoseInput& input, Findings& findings) {
    const fs::path& config = input.paths.systemdConfig;
    std::error_code ec;
    const bool masked = fs::is_symlink(config / "fstrim.timer", ec) &&
                        fs::read_symlink(config / "fstrim.timer", ec) == fs::path("/dev/null");
    const bool wanted =
        fs::symlink_status(config / "timers.target.wants/fstrim.timer", ec).type() !=
        fs::file_type::not_found;
    if (wanted && !masked)
        findings.push_back(
            {Severity::Warning, "fstrim.timer",
             "fstrim.timer is enabled too: every week it trims the same filesystems again, all "
             "at once and without thintrim's rate limit",
             "systemctl disable --now fstrim.timer"});
    else
        findings.push_back({Severity::Ok, "fstrim.timer", "fstrim.timer is not enabled", ""});
}

using DiagnoseCheck = void (*)(const DiagnoseInput& input, Findings& findings);

constexpr std::array<DiagnoseCheck, 8> kChecks{
    checkBlockStacks, checkThinPools, checkContinuousDiscard, checkNetworkFilesystems,
    checkSwap,        checkCrypttab,  checkLvmConfig,         checkFstrimTimer,
};

} // namespace

std::vector<Finding> runDiagnosis(const SystemPaths& paths,
                                  const std::vector<CatalogEntry>& catalog) {
    const DiagnoseInput input{paths, catalog};
    Findings findings;
    for (DiagnoseCheck check : kChecks)
        check(input, findings);
    return findings;
}

std::vector<Finding> proofFindings(const std::vector<CatalogEntry>& catalog, const State* state) {
    Findings findings;
    bool unverified = false;
    for (const CatalogEntry& entry : catalog) {
        const Mount& mount = entry.mount;
        if (!mount.isManaged() || !entry.eligible())
            continue;
        const FilesystemHistory* history = nullptr;
        if (state != nullptr) {
            auto found = state->filesystems.find(mount.identity());
            if (found != state->filesystems.end())
                history = &found->second;
        }
        if (history != nullptr && history->lastTrimResult == TrimOutcome::Success &&
            discardsSwallowed(history->lastTrimmedBytes, history->lastReachedDiskBytes))
            findings.push_back({Severity::Warning, mount.mountPoint,
                                "last trim: " + swallowedSentence(history->lastTrimmedBytes),
                                fmt::format("`thintrim stack {}` shows the layers; check thin "
                                            "pools with `lvs -o name,discards`",
                                            mount.mountPoint)});
        if (state == nullptr) {
            unverified = true;
            continue;
        }
        if (history == nullptr || !history->lastVerifyResult) {
            findings.push_back({Severity::Info, mount.mountPoint,
                                "never verified: nothing yet proves that its discards free space "
                                "on the host",
                                fmt::format("thintrim verify {}", mount.mountPoint)});
            continue;
        }
        const std::string when = formatRelative(history->lastVerifyTime, realtimeNow());
        switch (*history->lastVerifyResult) {
        case VerifyVerdict::Passes:
            findings.push_back(
                {Severity::Ok, mount.mountPoint,
                 fmt::format("verify passed {}: {}", when, history->lastVerifyMessage), ""});
            break;
        case VerifyVerdict::Dropped:
            findings.push_back({Severity::Error, mount.mountPoint,
                                fmt::format("verify {}: discards are dropped: {}", when,
                                            history->lastVerifyMessage),
                                fmt::format("fix the setting named, then `thintrim verify {}`",
                                            mount.mountPoint)});
            break;
        case VerifyVerdict::Inconclusive:
            findings.push_back(
                {Severity::Info, mount.mountPoint,
                 fmt::format("verify {} was inconclusive: {}", when, history->lastVerifyMessage),
                 fmt::format("thintrim verify {}", mount.mountPoint)});
            break;
        }
    }
    if (unverified)
        findings.push_back({Severity::Info, "thintrim verify",
                            "no verify verdict at hand (thintrimd keeps them): nothing here proves "
                            "that discards free space on the host",
                            "thintrim verify"});
    return findings;
}

} // namespace thintrim
