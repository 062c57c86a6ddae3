// SPDX-License-Identifier: GPL-2.0-or-later
#include "metrics.h"

#include "atomic_file.h"
#include "error.h"
#include "unique_fd.h"
#include "utf8.h"

#include <cerrno>
#include <cstdio>

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace thintrim::daemon {

namespace {

// Label values are UTF-8 (utf8.h) and escape backslash, double quote and
// newline.
std::string labelValue(std::string_view raw) {
    const std::string text = escapeInvalidUtf8(raw);
    std::string escaped;
    for (char c : text) {
        if (c == '\\' || c == '"')
            escaped += '\\';
        if (c == '\n') {
            escaped += "\\n";
            continue;
        }
        escaped += c;
    }
    return escaped;
}

double seconds(Microseconds value) {
    return static_cast<double>(value.count()) / 1e6;
}

struct Family {
    const char* name;
    const char* type;
    const char* help;
};

} // namespace

std::string formatMetrics(const State& state) {
    std::string text;
    auto header = [&text](const Family& family) {
        text += fmt::format("# HELP {} {}\n# TYPE {} {}\n", family.name, family.help, family.name,
                            family.type);
    };
    auto perFilesystem = [&](const Family& family, auto value) {
        header(family);
        for (const auto& [identity, history] : state.filesystems)
            text +=
                fmt::format("{}{{mountpoint=\"{}\",identity=\"{}\"}} {}\n", family.name,
                            labelValue(history.mountPoint), labelValue(identity), value(history));
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

    header({"thintrim_suspended", "gauge", "1 while thintrimd is suspended."});
    text += fmt::format("thintrim_suspended {}\n", state.suspended ? 1 : 0);
    header({"thintrim_daemon_trimmed_bytes_total", "counter",
            "Bytes trimmed over every filesystem over the daemon's lifetime."});
    text += fmt::format("thintrim_daemon_trimmed_bytes_total {}\n", state.totalTrimmedBytes);
    return text;
}

void writeMetricsFile(const std::filesystem::path& file, const State& state) {
    const std::string text = formatMetrics(state);
    // node_exporter reads only *.prom, so the temporary name is not picked
    // up. The unit's UMask=0077 would leave the file 0600, unreadable for
    // node_exporter's user: the mode is set exactly.
    writeFileAtomically(file, file.filename().string() + ".tmp", text, 0644, true);
}

} // namespace thintrim::daemon
