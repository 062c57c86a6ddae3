// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "audit.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace thintrim::host {

// What the guest said it trimmed.
struct GuestFilesystemTrim {
    std::string mountPoint;
    std::uint64_t trimmedBytes = 0;
    std::optional<std::uint64_t> reachedDiskBytes; // thintrim's receipt
};

struct GuestTrim {
    std::string command; // "thintrim trim --all --json" or "fstrim -av"
    int exitCode = -1;
    std::vector<GuestFilesystemTrim> filesystems;
    std::string error; // the guest's standard error when it failed
    [[nodiscard]] std::uint64_t trimmedBytes() const;
    // The sum of receipts; nullopt when no filesystem has one (fstrim).
    [[nodiscard]] std::optional<std::uint64_t> reachedDiskBytes() const;
};

// `thintrim trim --json` output: {"results": [{"mount_point", "trimmed_bytes",
// "reached_disk_bytes"}...]}. nullopt when it is not that.
[[nodiscard]] std::optional<std::vector<GuestFilesystemTrim>>
parseThintrimTrimJson(std::string_view text);
// `fstrim -av` output: "/boot: 1.2 GiB (1288490188 bytes) trimmed on /dev/vda1".
[[nodiscard]] std::vector<GuestFilesystemTrim> parseFstrimOutput(std::string_view text);

// The layer where the guest's freed space stopped on its way back to the host.
enum class StopLayer {
    None,         // the image gave space back
    GuestStack,   // QEMU received no discard for this disk
    QemuIgnore,   // QEMU received discards and dropped them (discard=ignore)
    Qcow2Pinned,  // qcow2 snapshots or a backing file hold the clusters
    ThinPool,     // the host's thin pool ignores discards
    BelowQemu,    // QEMU passed discards on; the image did not shrink for another reason
    Inconclusive, // nothing to judge by (nothing trimmed, no counters)
};
[[nodiscard]] std::string_view stopLayerName(StopLayer layer);

struct DiskMeasure {
    std::optional<std::uint64_t> allocatedBytes;
    std::optional<std::uint64_t> unmapBytes; // QEMU's counter
};

struct DiskProof {
    AuditedDisk disk; // as audited before the trim
    DiskMeasure before;
    DiskMeasure after;
    StopLayer verdict = StopLayer::Inconclusive;
    std::string explanation;

    [[nodiscard]] std::optional<std::uint64_t> qemuReceivedBytes() const;
    // Bytes the image gave back (0 when it grew).
    [[nodiscard]] std::optional<std::uint64_t> releasedBytes() const;
};

// The verdict for one disk from its measures and what the guest trimmed.
void judge(DiskProof& proof, std::uint64_t guestTrimmedBytes);

struct ProveReport {
    std::string vm;
    std::string qmpSocket;
    std::string guestAgentSocket;
    GuestTrim guest;
    std::vector<DiskProof> disks;
};

struct ProveOptions {
    AuditRoots roots;
    std::string vm;          // a VMID, a libvirt name, or the -name of a plain QEMU
    std::string qmpSocket;   // --qmp; else from the command line or Proxmox's path
    std::string agentSocket; // --qga; else likewise
    std::filesystem::path proxmoxRunDir = "/var/run/qemu-server";
    std::chrono::milliseconds requestTimeout{10000}; // one QMP or agent request
    std::chrono::milliseconds trimTimeout{1800000};  // the whole trim in the guest
};

// Measures, asks the guest to trim (thintrim, else fstrim -av), measures
// again and judges. Error(InvalidArgument) for a VM that is not running,
// Error(Failed)/AccessDenied for sockets it cannot use.
[[nodiscard]] ProveReport runProve(const ProveOptions& options, const ImageProbe& probe);

} // namespace thintrim::host
