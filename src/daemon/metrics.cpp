// SPDX-License-Identifier: GPL-2.0-or-later
#include "metrics.h"

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/unique_fd.h"
#include "base/utf8.h"

#include <cerrno>
#include <cstdio>

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace thintrim::daemon {

namespace {

double seconds(Microseconds value) {
    return static_cast<double>(value.count()) / 1e6;
}

struct Family {
    const char* name;
    const char* type;
    const char* help;
};

} // namespace

std::string formatMetrics(const State& state, const DiscardBacklog& discardBacklog,
                          const BytesByIdentity& freedSinceLastTrim) {
    std::string text;
    auto header = [&text](const Family& family) {
        text += fmt::format("# HELP {} {}\n# TYPE {} {}\n", family.name, family.help, family.name,
                            family.type);
    };
    auto perFilesystem = [&](const Family& family, auto value) {
        header(family);
        for (const auto& [identity, history] : state.filesystems)
            text += fmt::format("{}{{mountpoint=\"{}\",identity=\"{}\"}} {}\n", family.name,
                                prometheusLabelValue(history.mountPoint),
                                prometheusLabelValue(identity), value(history));
    };

    perFilesystem({"thintrim_last_trim_timestamp_seconds", "gauge",
                   "When the last trim of the filesystem finished (Unix time)."},
                  [](const FilesystemHistory& h) { return seconds(h.lastTrimFinished); });
    perFilesystem({"thintrim_last_trim_success", "gauge",
                   "1 if the last trim of the filesystem succeeded, else 0."},
                  [](const FilesystemHistory& h) {
                      return h.lastTrimResult == TrimOutcome::Success ? 1 : 0;
                  });
    perFilesystem({"thintrim_last_trimmed_bytes", "gauge",
                   "Bytes the kernel reported trimmed by the last trim."},
                  [](const FilesystemHistory& h) { return h.lastTrimmedBytes; });
    perFilesystem({"thintrim_last_trim_duration_seconds", "gauge",
                   "How long the last trim of the filesystem took."},
                  [](const FilesystemHistory& h) { return seconds(h.lastTrimDuration); });
    perFilesystem({"thintrim_trimmed_bytes_total", "counter",
                   "Bytes trimmed from the filesystem over all recorded trims."},
                  [](const FilesystemHistory& h) { return h.totalTrimmedBytes; });
    perFilesystem({"thintrim_trims_total", "counter", "Successful trims of the filesystem."},
                  [](const FilesystemHistory& h) { return h.trimCount; });

    perFilesystem({"thintrim_last_reached_disk_bytes", "gauge",
                   "Bytes of discards the leaf devices completed during the last trim (receipts; "
                   "NaN when unknown)."},
                  [](const FilesystemHistory& h) {
                      return h.lastReachedDiskBytes ? std::to_string(*h.lastReachedDiskBytes)
                                                    : std::string("NaN");
                  });
    perFilesystem({"thintrim_reached_disk_bytes_total", "counter",
                   "Bytes of discards that reached the leaf devices over all recorded trims."},
                  [](const FilesystemHistory& h) { return h.totalReachedDiskBytes; });
    perFilesystem({"thintrim_verify_result", "gauge",
                   "The last thintrim verify: 1 passes, 0 dropped, -1 inconclusive, -2 never."},
                  [](const FilesystemHistory& h) {
                      if (!h.lastVerifyResult)
                          return -2;
                      switch (*h.lastVerifyResult) {
                      case VerifyVerdict::Passes:
                          return 1;
                      case VerifyVerdict::Dropped:
                          return 0;
                      case VerifyVerdict::Inconclusive:
                          return -1;
                      }
                      return -1;
                  });
    perFilesystem({"thintrim_verify_timestamp_seconds", "gauge",
                   "When the last thintrim verify of the filesystem finished (Unix time)."},
                  [](const FilesystemHistory& h) { return seconds(h.lastVerifyTime); });
    // Only the filesystems `samples` has a value for.
    auto sampled = [&](const Family& family, const BytesByIdentity& samples) {
        header(family);
        for (const auto& [identity, history] : state.filesystems) {
            if (auto sample = samples.find(identity); sample != samples.end())
                text += fmt::format("{}{{mountpoint=\"{}\",identity=\"{}\"}} {}\n", family.name,
                                    prometheusLabelValue(history.mountPoint),
                                    prometheusLabelValue(identity), sample->second);
        }
    };
    sampled({"thintrim_discard_backlog_bytes", "gauge",
             "btrfs discard=async: bytes freed but not yet discarded (discardable_bytes)."},
            discardBacklog);
    sampled({"thintrim_freed_since_last_trim_bytes", "gauge",
             "Space freed since the last trim (free space gained plus bytes written since): "
             "freed in the guest, likely still allocated on the host until the next trim "
             "(an estimate, on the high side)."},
            freedSinceLastTrim);

    header({"thintrim_suspended", "gauge", "1 while thintrimd is suspended."});
    text += fmt::format("thintrim_suspended {}\n", state.suspended ? 1 : 0);
    header({"thintrim_daemon_trimmed_bytes_total", "counter",
            "Bytes trimmed over every filesystem over the daemon's lifetime."});
    text += fmt::format("thintrim_daemon_trimmed_bytes_total {}\n", state.totalTrimmedBytes);
    header({"thintrim_daemon_reached_disk_bytes_total", "counter",
            "Bytes of discards that reached the disks over the daemon's lifetime (receipts)."});
    text +=
        fmt::format("thintrim_daemon_reached_disk_bytes_total {}\n", state.totalReachedDiskBytes);
    return text;
}

void writeMetricsFile(const std::filesystem::path& file, const State& state,
                      const DiscardBacklog& discardBacklog,
                      const BytesByIdentity& freedSinceLastTrim) {
    const std::string text = formatMetrics(state, discardBacklog, freedSinceLastTrim);
    // node_exporter reads only *.prom, so the temporary name is not picked
    // up. The unit's UMask=0077 would leave the file 0600, unreadable for
    // node_exporter's user: the mode is set exactly.
    writeFileAtomically(file, file.filename().string() + ".tmp", text, 0644, true);
}

} // namespace thintrim::daemon
