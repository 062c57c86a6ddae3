// SPDX-License-Identifier: GPL-2.0-or-later
#include "mount_watch.h"

#include "base/error.h"
#include "stack/diskstats.h"

#include <array>
#include <cerrno>
#include <cstring>
#include <exception>
#include <thread>

#include <fmt/format.h>
#include <libmount/libmount.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace thintrim::daemon {

namespace {

bool isKernelTable(const std::filesystem::path& mountinfo) {
    return mountinfo == "/proc/self/mountinfo" || mountinfo == "/proc/mounts" ||
           mountinfo == "/proc/self/mounts";
}

} // namespace

void MountWatch::MonitorUnref::operator()(libmnt_monitor* monitor) const {
    mnt_unref_monitor(monitor);
}

MountWatch::MountWatch(EventLoop& loop, const std::filesystem::path& mountinfo,
                       std::function<void()> onChange, Microseconds settle)
    : loop_(loop), onChange_(std::move(onChange)), settle_(settle),
      settleTimer_(loop, CLOCK_MONOTONIC, [this] {
          if (changedWhileSettling_) {
              changedWhileSettling_ = false;
              onChange_();
              settleTimer_.armIn(settle_);
          } else {
              settling_ = false;
          }
      }) {
    if (isKernelTable(mountinfo)) {
        monitor_.reset(mnt_new_monitor());
        if (!monitor_)
            throwSystemError("mnt_new_monitor", ENOMEM);
        if (int r = mnt_monitor_enable_kernel(monitor_.get(), 1); r < 0)
            throwSystemError("mnt_monitor_enable_kernel", -r);
        fd_ = mnt_monitor_get_fd(monitor_.get());
        if (fd_ < 0)
            throwSystemError("mnt_monitor_get_fd", -fd_);
    } else {
        inotify_.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
        if (!inotify_.isValid())
            throwSystemError("inotify_init1", errno);
        const std::filesystem::path directory =
            mountinfo.has_parent_path() ? mountinfo.parent_path() : std::filesystem::path(".");
        fileName_ = mountinfo.filename();
        if (::inotify_add_watch(inotify_.get(), directory.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) <
            0)
            throwSystemError("inotify_add_watch " + directory.string(), errno);
        fd_ = inotify_.get();
    }
    loop_.watch(
        fd_, [this] { onReadable(); }, "re-reading the mount table");
}

MountWatch::~MountWatch() {
    loop_.unwatch(fd_);
}

void MountWatch::onReadable() {
    bool changed = false;
    if (monitor_) {
        // Drain every pending change; one re-read covers them all.
        const char* filename = nullptr;
        int type = 0;
        while (mnt_monitor_next_change(monitor_.get(), &filename, &type) == 0)
            changed = true;
    } else {
        alignas(inotify_event) std::array<char, 4096> buffer{};
        for (;;) {
            const ssize_t length = ::read(inotify_.get(), buffer.data(), buffer.size());
            if (length <= 0)
                break;
            for (ssize_t offset = 0; offset < length;) {
                inotify_event event{};
                std::memcpy(&event, buffer.data() + offset, sizeof event);
                const char* name = buffer.data() + offset + sizeof(inotify_event);
                if (event.len > 0 && fileName_ == name)
                    changed = true;
                offset += static_cast<ssize_t>(sizeof(inotify_event) + event.len);
            }
        }
    }
    if (!changed)
        return;
    // A change after a quiet spell is read at once; during a burst, at most
    // once per settle period, the last read after the burst's last change.
    if (settling_) {
        changedWhileSettling_ = true;
        return;
    }
    settling_ = true;
    settleTimer_.armIn(settle_);
    onChange_();
}

// --- MountScanner ---------------------------------------------------------------

struct MountScanner::Shared {
    explicit Shared(SystemPaths systemPaths) : paths(std::move(systemPaths)) {}

    const SystemPaths paths;
    UniqueFd eventFd;

    std::mutex mutex;
    std::condition_variable wake;     // a request or stop
    std::condition_variable finished; // a scan ended
    bool stop = false;
    std::optional<Scope> pending;
    // requestSamples(): the mount points to sample, with their write
    // counters; taken by the next scan (a wider one samples every mount).
    WriteCounters pendingSamples;
    InventoryOptions options;
    std::uint64_t requests = 0;     // numbered, so that callers know their scan
    std::uint64_t done = 0;         // the number of the request the last scan served
    std::vector<MountScan> results; // finished, in order, not yet taken

    // The scanning thread's alone.
    DeviceNameCache names;
    StackCache stacks;
};

namespace {

std::optional<FreeSpace> sampleFreeSpace(const std::string& mountPoint,
                                         std::optional<std::uint64_t> written) {
    struct statvfs info {};
    if (::statvfs(mountPoint.c_str(), &info) != 0)
        return std::nullopt;
    return FreeSpace{std::uint64_t{info.f_blocks} * info.f_frsize,
                     std::uint64_t{info.f_bavail} * info.f_frsize, written};
}

MountScan sampleWritten(const WriteCounters& written) {
    MountScan scan;
    scan.samplesOnly = true;
    for (const auto& [mountPoint, counter] : written) {
        if (std::optional<FreeSpace> sample = sampleFreeSpace(mountPoint, counter))
            scan.freeSpace[mountPoint] = *sample;
    }
    return scan;
}

MountScan scanOnce(MountScanner::Scope scope, const SystemPaths& paths,
                   const InventoryOptions& options, DeviceNameCache& names, StackCache& stacks,
                   const WriteCounters& samples) {
    if (scope == MountScanner::Scope::Samples)
        return sampleWritten(samples);
    MountScan scan;
    if (scope >= MountScanner::Scope::Verdicts)
        stacks.walks.clear();
    try {
        scan.catalog = buildCatalog(paths, readInventory(paths, options, &names), options, &stacks);
    } catch (const std::exception& e) {
        scan.error = e.what();
        return scan;
    }
    const Diskstats diskstats = readDiskstats(paths.diskstats).value_or(Diskstats{});
    for (const CatalogEntry& entry : scan.catalog) {
        if (!entry.mount.isManaged())
            continue;
        const std::optional<std::uint64_t> written =
            entry.stack ? bytesWrittenTo(*entry.stack, diskstats) : std::nullopt;
        if (std::optional<FreeSpace> sample = sampleFreeSpace(entry.mount.mountPoint, written))
            scan.freeSpace[entry.mount.mountPoint] = *sample;
        if (auto async = btrfsAsyncDiscard(paths, entry.mount))
            scan.asyncDiscard[entry.mount.mountPoint] = *async;
    }
    if (scope == MountScanner::Scope::Diagnosis)
        scan.findings = runDiagnosis(paths, scan.catalog);
    return scan;
}

void scanLoop(const std::shared_ptr<MountScanner::Shared>& shared) {
    MountScanner::Shared& s = *shared;
    for (;;) {
        MountScanner::Scope scope{};
        InventoryOptions options;
        std::uint64_t serving = 0;
        WriteCounters samples;
        {
            std::unique_lock lock(s.mutex);
            s.wake.wait(lock, [&] { return s.stop || s.pending.has_value(); });
            if (s.stop)
                return;
            scope = *s.pending;
            s.pending.reset();
            samples.swap(s.pendingSamples);
            options = s.options;
            serving = s.requests;
        }
        MountScan scan = scanOnce(scope, s.paths, options, s.names, s.stacks, samples);
        scan.answers = serving;
        {
            std::lock_guard lock(s.mutex);
            s.results.push_back(std::move(scan));
            s.done = serving;
        }
        s.finished.notify_all();
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t written = ::write(s.eventFd.get(), &one, sizeof one);
    }
}

} // namespace

MountScanner::MountScanner(EventLoop& loop, SystemPaths paths,
                           std::function<void(MountScan)> onScan)
    : loop_(loop), onScan_(std::move(onScan)), shared_(std::make_shared<Shared>(std::move(paths))) {
    shared_->eventFd.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!shared_->eventFd.isValid())
        throwSystemError("eventfd", errno);
    loop_.watch(
        shared_->eventFd.get(), [this] { onReadable(); }, "applying a mount scan");
    // Detached: a scan stuck in the kernel on a hung device must not keep
    // the daemon from stopping. The thread owns a share of the state.
    std::thread([shared = shared_] { scanLoop(shared); }).detach();
}

MountScanner::~MountScanner() {
    loop_.unwatch(shared_->eventFd.get());
    {
        std::lock_guard lock(shared_->mutex);
        shared_->stop = true;
    }
    shared_->wake.notify_all();
}

void MountScanner::setOptions(const InventoryOptions& options) {
    std::lock_guard lock(shared_->mutex);
    shared_->options = options;
}

std::uint64_t MountScanner::request(Scope scope) {
    std::uint64_t number = 0;
    {
        std::lock_guard lock(shared_->mutex);
        // A wider scope includes the narrower: the widest request wins.
        if (!shared_->pending || scope > *shared_->pending)
            shared_->pending = scope;
        number = ++shared_->requests;
    }
    shared_->wake.notify_one();
    return number;
}

std::uint64_t MountScanner::requestSamples(WriteCounters written) {
    {
        std::lock_guard lock(shared_->mutex);
        for (auto& [mountPoint, counter] : written)
            shared_->pendingSamples.insert_or_assign(mountPoint, counter);
    }
    return request(Scope::Samples);
}

std::optional<MountScan> MountScanner::scanAndWait(std::chrono::milliseconds timeout) {
    const std::uint64_t wanted = request(Scope::Mounts);
    std::unique_lock lock(shared_->mutex);
    if (!shared_->finished.wait_for(lock, timeout, [&] { return shared_->done >= wanted; }))
        return std::nullopt;
    // The last scan read the table after every earlier one.
    std::optional<MountScan> scan = std::move(shared_->results.back());
    shared_->results.clear();
    return scan;
}

void MountScanner::onReadable() {
    std::uint64_t count = 0;
    [[maybe_unused]] const ssize_t got = ::read(shared_->eventFd.get(), &count, sizeof count);
    std::vector<MountScan> scans;
    {
        std::lock_guard lock(shared_->mutex);
        scans.swap(shared_->results);
    }
    // Every one, in order: a waiter for an older scan's findings gets them.
    for (MountScan& scan : scans)
        onScan_(std::move(scan));
}

std::vector<Finding> diagnosisFrom(const MountScan* scan, Microseconds waited,
                                   const FilesystemCatalog& catalog, const State& state) {
    if (scan == nullptr)
        throw Error(ErrorCode::Failed,
                    fmt::format("the diagnosis reads every block stack afresh, and that did not "
                                "end within {}: a device does not answer (see thintrimd's log), "
                                "or thintrimd is stopping",
                                formatDuration(waited)));
    if (!scan->findings)
        throw Error(ErrorCode::Failed,
                    fmt::format("cannot read the mount table: {}",
                                scan->error.value_or("the diagnosis did not run")));
    std::vector<Finding> findings = *scan->findings;
    std::vector<CatalogEntry> managed;
    for (const CatalogEntry* entry : catalog.managedEntries())
        managed.push_back(*entry);
    for (Finding& finding : proofFindings(managed, &state))
        findings.push_back(std::move(finding));
    return findings;
}

} // namespace thintrim::daemon
