// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "audit.h"
#include "base/enum_codec.h"

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

// A disk under a guest filesystem, as the guest agent's guest-get-fsinfo
// names it: udev's ID_SERIAL ("trimvblk0" for virtio-blk, "0QEMU_QEMU_HARDDISK_
// drive-scsi0" for scsi-hd) and its device node.
struct GuestDiskId {
    std::string serial;
    std::string busType; // "scsi", "virtio", "sata"
    std::string dev;     // "/dev/sdb"
};

struct GuestFilesystemDisks {
    std::string mountPoint;
    std::string type; // "ext4"
    std::vector<GuestDiskId> disks;
};

// guest-get-fsinfo's "return"; entries that are not objects are skipped.
[[nodiscard]] std::vector<GuestFilesystemDisks> parseGuestFsInfo(const nlohmann::json& fsinfo);

// Whether the guest's disk `guest` is the host's `disk`, by serial: the
// device's serial= (virtio-blk: the first 20 bytes; scsi-hd: the tail of
// "0QEMU_QEMU_HARDDISK_SERIAL"), else for a scsi-hd on a -drive the drive id
// QEMU reports as its device identification. No serial, no match.
[[nodiscard]] bool isSameDisk(const GuestDiskId& guest, const AuditedDisk& disk);

// The layer where the guest's freed space stopped on its way back to the host.
enum class StopLayer {
    None,           // the image gave space back
    GuestStack,     // QEMU received no discard for this disk
    QemuIgnore,     // QEMU received discards and dropped them (discard=ignore)
    Qcow2Pinned,    // qcow2 snapshots or a backing file hold the clusters
    ThinPool,       // the host's thin pool ignores discards
    BelowQemu,      // QEMU passed discards on; the image did not shrink for another reason
    Inconclusive,   // nothing to judge by (nothing trimmed, no counters)
    NothingTrimmed, // the guest trimmed nothing on this disk's filesystems
};
inline constexpr auto kStopLayers =
    makeEnumCodec<StopLayer>("verdict", {{StopLayer::None, "none"},
                                         {StopLayer::GuestStack, "guest stack"},
                                         {StopLayer::QemuIgnore, "qemu discard=ignore"},
                                         {StopLayer::Qcow2Pinned, "qcow2 snapshot or backing file"},
                                         {StopLayer::ThinPool, "thin pool"},
                                         {StopLayer::BelowQemu, "below qemu"},
                                         {StopLayer::Inconclusive, "inconclusive"},
                                         {StopLayer::NothingTrimmed, "nothing trimmed"}});
[[nodiscard]] constexpr std::string_view stopLayerName(StopLayer layer) {
    return kStopLayers.name(layer);
}

struct DiskMeasure {
    std::optional<std::uint64_t> allocatedBytes;
    std::optional<std::uint64_t> unmapBytes; // QEMU's counter
    std::optional<std::uint64_t> unmapOperations;
};

struct DiskProof {
    AuditedDisk disk; // as audited before the trim
    DiskMeasure before;
    DiskMeasure after;
    StopLayer verdict = StopLayer::Inconclusive;
    std::string explanation;
    // What the guest trimmed on filesystems of this disk; nullopt when the
    // guest's filesystems could not be placed on its disks (no fsinfo, a
    // trimmed filesystem on a disk without a serial).
    std::optional<std::uint64_t> guestTrimmedBytes;
    std::vector<std::string> guestMountPoints; // the guest filesystems on this disk

    // QEMU counts the discards this disk received: not so for virtio-blk,
    // whose discards QEMU (7.2 and others) passes on without counting them in
    // query-blockstats (its discard path has no block accounting), unless
    // the counter moved.
    [[nodiscard]] bool qemuCountsDiscards() const;
    // nullopt when the counters were not read or QEMU does not count them.
    [[nodiscard]] std::optional<std::uint64_t> qemuReceivedBytes() const;
    [[nodiscard]] std::optional<std::uint64_t> qemuReceivedOperations() const;
    // Bytes the image gave back (0 when it grew).
    [[nodiscard]] std::optional<std::uint64_t> releasedBytes() const;
};

// The verdict for one disk from its measures and what the guest trimmed:
// on this disk (proof.guestTrimmedBytes) when known, else in all.
void judge(DiskProof& proof, std::uint64_t guestTrimmedBytes);

// Sets each proof's guestTrimmedBytes and guestMountPoints from what the
// guest trimmed and where its filesystems are. Disks on which no trimmed
// filesystem was placed get 0, unless a trimmed filesystem could not be
// placed at all: then they stay unknown. A guest disk without a serial is
// placed on the VM's one disk that shows none, when there is exactly one.
// Returns the trimmed bytes that could not be placed.
std::uint64_t placeGuestTrims(std::vector<DiskProof>& proofs, const GuestTrim& trim,
                              const std::vector<GuestFilesystemDisks>& fsinfo);

struct ProveReport {
    std::string vm;
    std::string qmpSocket;
    std::string guestAgentSocket;
    GuestTrim guest;
    std::string fsinfoError; // why the guest's filesystems could not be placed on disks
    std::uint64_t unplacedTrimmedBytes = 0;
    std::vector<DiskProof> disks;
};

// Asks the guest through its agent to trim: `thintrim trim --all --json`
// (through its daemon, else --local), else `fstrim -av` where thintrim is not
// installed. Error(System) when it does not finish within `timeout` (the
// trim goes on in the guest) or the agent fails.
[[nodiscard]] GuestTrim trimInGuest(GuestAgentClient& agent, std::chrono::milliseconds timeout);

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
