// SPDX-License-Identifier: GPL-2.0-or-later
#include "render.h"

#include "base/utf8.h"
#include "exit_codes.h"
#include "thintrim1_schema.h"
#include "trim/receipts.h"

#include <algorithm>
#include <array>
#include <map>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace thintrim::cli {

std::string sizeText(std::uint64_t bytes, const RenderOptions& options) {
    return options.exactBytes ? std::to_string(bytes) : formatSize(bytes);
}

nlohmann::json layerJson(const Layer& layer) {
    return {
        {"depth", layer.depth},
        {"name", layer.name},
        {"device", layer.device.toString()},
        {"kind", layerKindName(layer.kind)},
        {"detail", layer.detail},
        {"discard_max_bytes", layer.discardMaxBytes},
        {"discard_max_hw_bytes", layer.discardMaxHwBytes},
        {"discard_granularity", layer.discardGranularity},
        {"size", layer.sizeBytes},
        {"passes", layer.passesDiscards()},
    };
}

nlohmann::json stackJson(const BlockStack& stack) {
    nlohmann::json layers = nlohmann::json::array();
    for (const Layer& layer : stack.layers)
        layers.push_back(layerJson(layer));
    nlohmann::json culprits = nlohmann::json::array();
    for (std::size_t index : stack.verdict.culprits)
        culprits.push_back(stack.layers.at(index).name);
    return {
        {"eligible", stack.verdict.eligible},
        {"reason", stack.verdict.reason},
        {"culprits", culprits},
        {"layers", layers},
    };
}

nlohmann::json entryJson(const CatalogEntry& entry) {
    const Mount& mount = entry.mount;
    nlohmann::json devices = nlohmann::json::array();
    for (const DeviceNumber& device : mount.blockDevices)
        devices.push_back(device.toString());
    nlohmann::json json = {
        {"mount_point", mount.mountPoint},
        {"source", mount.source},
        {"fstype", mount.fsType},
        {"root", mount.root},
        {"device", mount.mountDevice.toString()},
        {"block_devices", devices},
        {"uuid", mount.uuid},
        {"label", mount.label},
        {"options", mount.vfsOptions},
        {"managed", mount.isManaged()},
        {"skip_reason", nullptr},
        {"skip_detail", mount.skipDetail},
        {"eligible", entry.eligible()},
        {"reason", entry.reason()},
        {"discard_max_bytes", entry.discardMaxBytes()},
        {"discard_granularity", entry.discardGranularity()},
    };
    if (mount.skipReason)
        json["skip_reason"] = skipReasonName(*mount.skipReason);
    return json;
}

nlohmann::json listEntryJson(nlohmann::json entry) {
    // thintrim(1) lists these keys: the Filesystem properties' (the schema,
    // generated from the bus API's XML) and those only the inventory knows.
    static const std::vector<std::string_view> kKeys = [] {
        std::vector<std::string_view> keys(dbus::schema::kFilesystemJsonKeys.begin(),
                                           dbus::schema::kFilesystemJsonKeys.end());
        keys.insert(keys.end(), kInventoryOnlyKeys.begin(), kInventoryOnlyKeys.end());
        return keys;
    }();
    for (const auto& [key, value] : entry.items()) {
        if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end())
            throw std::logic_error("list --json: key outside the schema: " + key);
    }
    for (std::string_view key : kKeys) {
        if (!entry.contains(key))
            entry[std::string(key)] = nullptr;
    }
    return entry;
}

nlohmann::json reportJson(const std::string& mountPoint, const TrimReport& report) {
    return {
        {"mount_point", mountPoint},
        {"result", trimOutcomeName(report.outcome)},
        {"trimmed_bytes", report.trimmedBytes},
        {"duration_us", report.duration.count()},
        {"message", report.message},
        {"calls", report.calls},
        {"resume_from", report.resumeFrom},
        {"reached_disk_bytes",
         report.reachedDiskBytes ? nlohmann::json(*report.reachedDiskBytes) : nlohmann::json()},
    };
}

namespace {

// JSON is UTF-8: bytes in another encoding (a label, a mount point read
// locally) are escaped as the daemon escapes them on the bus (utf8.h), keys
// included, instead of making dump() throw.
nlohmann::json withValidUtf8(const nlohmann::json& json) {
    if (json.is_string())
        return escapeInvalidUtf8(json.get_ref<const std::string&>());
    if (json.is_array()) {
        nlohmann::json escaped = nlohmann::json::array();
        for (const nlohmann::json& element : json)
            escaped.push_back(withValidUtf8(element));
        return escaped;
    }
    if (json.is_object()) {
        nlohmann::json escaped = nlohmann::json::object();
        for (const auto& [key, value] : json.items())
            escaped[escapeInvalidUtf8(key)] = withValidUtf8(value);
        return escaped;
    }
    return json;
}

} // namespace

void printJson(const nlohmann::json& json) {
    fmt::print("{}\n", withValidUtf8(json).dump(2));
}

void TrimResults::add(const std::string& mountPoint, const TrimReport& report) {
    if (report.outcome != TrimOutcome::Skipped)
        ++attempted_;
    if (report.outcome == TrimOutcome::Failed ||
        (named_ && report.outcome == TrimOutcome::Unsupported))
        ++failed_;
    if (json_)
        results_.push_back(reportJson(mountPoint, report));
    else
        printReport(stdout, mountPoint, report);
    std::fflush(stdout);
}

int TrimResults::exitCode() const {
    if (failed_ == 0)
        return kExitOk;
    return failed_ == attempted_ ? kExitAllFailed : kExitSomeFailed;
}

namespace {

// Columns on screen, not bytes: tree branches are multi-byte UTF-8. fmt pads
// by the same measure.
std::size_t displayWidth(std::string_view text) {
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }));
}

std::size_t columnWidth(const std::vector<std::vector<std::string>>& rows, std::size_t column) {
    std::size_t width = 0;
    for (const auto& row : rows)
        width = std::max(width, displayWidth(row[column]));
    return width;
}

// Left-aligned columns separated by two spaces; the last column is not padded.
void printTable(std::FILE* out, const std::vector<std::vector<std::string>>& rows) {
    if (rows.empty())
        return;
    std::vector<std::size_t> widths;
    for (std::size_t column = 0; column < rows.front().size(); ++column)
        widths.push_back(columnWidth(rows, column));
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t column = 0; column < row.size(); ++column) {
            if (column + 1 == row.size())
                line += row[column];
            else
                line += fmt::format("{:<{}}  ", row[column], widths[column]);
        }
        fmt::print(out, "{}\n", line);
    }
}

// "yes", or "no [N]" with the reason appended to `notes` as note N.
std::string eligibleCell(const CatalogEntry& entry, std::vector<std::string>& notes) {
    if (entry.eligible())
        return "yes";
    notes.push_back(fmt::format("{}: {}", entry.mount.mountPoint, entry.reason()));
    return fmt::format("no [{}]", notes.size());
}

} // namespace

void printList(std::FILE* out, const std::vector<CatalogEntry>& catalog, bool all,
               const RenderOptions& options, std::size_t alsoSkipped) {
    std::vector<std::vector<std::string>> managed{
        {"MOUNT", "TYPE", "SOURCE", "SIZE", "DISC-MAX", "ELIGIBLE"}};
    std::vector<std::vector<std::string>> skipped{{"MOUNT", "TYPE", "SOURCE", "SKIPPED BECAUSE"}};
    // Reasons are whole sentences with a fix: too long for a column.
    std::vector<std::string> notes;
    std::size_t skippedCount = alsoSkipped;
    for (const CatalogEntry& entry : catalog) {
        const Mount& mount = entry.mount;
        if (mount.isManaged()) {
            std::uint64_t size = entry.stack && !entry.stack->layers.empty()
                                     ? entry.stack->layers.front().sizeBytes
                                     : 0;
            managed.push_back({mount.mountPoint, mount.fsType, mount.source,
                               sizeText(size, options), sizeText(entry.discardMaxBytes(), options),
                               eligibleCell(entry, notes)});
        } else {
            // Without --all only the count is shown: 10,000 rows are not
            // worth holding to print one number.
            ++skippedCount;
            if (all)
                skipped.push_back({mount.mountPoint, mount.fsType, mount.source, mount.skipDetail});
        }
    }
    if (managed.size() == 1)
        fmt::print(out, "No filesystem to trim was found.\n");
    else
        printTable(out, managed);
    if (!notes.empty())
        fmt::print(out, "\n");
    for (std::size_t i = 0; i < notes.size(); ++i)
        fmt::print(out, "[{}] {}\n", i + 1, notes[i]);
    if (all && skipped.size() > 1) {
        fmt::print(out, "\n");
        printTable(out, skipped);
    } else if (!all && skippedCount > 0) {
        fmt::print(out, "\n{} mounts skipped; --all shows them and why.\n", skippedCount);
    }
}

void printStack(std::FILE* out, const std::string& title, const BlockStack& stack,
                const RenderOptions& options) {
    fmt::print(out, "{}\n", title);
    std::vector<std::vector<std::string>> rows{
        {"NAME", "KIND", "DISC-GRAN", "DISC-MAX", "PASSES", "DETAIL"}};
    const auto& layers = stack.layers;
    for (std::size_t i = 0; i < layers.size(); ++i) {
        // Draw tree branches the way lsblk does: for each ancestor depth,
        // a bar while that ancestor has siblings still to come.
        std::string prefix;
        for (unsigned depth = 1; depth <= layers[i].depth; ++depth) {
            bool siblingFollows = false;
            for (std::size_t j = i + 1; j < layers.size() && layers[j].depth >= depth; ++j) {
                if (layers[j].depth == depth) {
                    siblingFollows = true;
                    break;
                }
            }
            if (depth == layers[i].depth)
                prefix += siblingFollows ? "├─" : "└─";
            else
                prefix += siblingFollows ? "│ " : "  ";
        }
        bool culprit = std::find(stack.verdict.culprits.begin(), stack.verdict.culprits.end(), i) !=
                       stack.verdict.culprits.end();
        rows.push_back(
            {prefix + layers[i].name, std::string(layerKindName(layers[i].kind)),
             sizeText(layers[i].discardGranularity, options),
             sizeText(layers[i].discardMaxBytes, options),
             layers[i].passesDiscards() ? "yes" : (culprit ? "NO  <- drops discards" : "no"),
             layers[i].detail});
    }
    printTable(out, rows);
    fmt::print(out, "\n{}: {}\n", stack.verdict.eligible ? "Eligible" : "Not eligible",
               stack.verdict.reason);
}

void printFindings(std::FILE* out, const std::vector<Finding>& findings) {
    std::map<Severity, unsigned> counts;
    for (const Finding& finding : findings) {
        ++counts[finding.severity];
        fmt::print(out, "{:<8} {}: {}\n", severityName(finding.severity), finding.subject,
                   finding.message);
        const bool problem =
            finding.severity == Severity::Warning || finding.severity == Severity::Error;
        if (!finding.hint.empty())
            fmt::print(out, "{:<8} {} {}\n", "", problem ? "fix:" : "note:", finding.hint);
    }
    std::vector<std::string> summary;
    for (Severity severity : {Severity::Error, Severity::Warning, Severity::Info, Severity::Ok})
        summary.push_back(fmt::format("{} {}", counts[severity], severityName(severity)));
    fmt::print(out, "\n{}\n", fmt::join(summary, ", "));
}

nlohmann::json findingsJson(const std::vector<Finding>& findings) {
    nlohmann::json list = nlohmann::json::array();
    for (const Finding& finding : findings)
        list.push_back({{"severity", severityName(finding.severity)},
                        {"subject", finding.subject},
                        {"message", finding.message},
                        {"hint", finding.hint}});
    return list;
}

void printReport(std::FILE* out, const std::string& mountPoint, const TrimReport& report) {
    switch (report.outcome) {
    case TrimOutcome::Success:
        if (report.message.empty())
            fmt::print(out, "{}: {} ({} bytes) trimmed in {}{}\n", mountPoint,
                       formatSize(report.trimmedBytes), report.trimmedBytes,
                       formatDuration(report.duration),
                       report.reachedDiskBytes ? fmt::format(", {} reached the disks",
                                                             formatSize(*report.reachedDiskBytes))
                                               : "");
        else
            fmt::print(out, "{}: {}\n", mountPoint, report.message);
        if (discardsSwallowed(report.trimmedBytes, report.reachedDiskBytes))
            fmt::print(out, "{}: warning: {}\n", mountPoint,
                       swallowedSentence(report.trimmedBytes));
        break;
    case TrimOutcome::Cancelled:
        fmt::print(out, "{}: cancelled after {} ({} bytes) trimmed; {}\n", mountPoint,
                   formatSize(report.trimmedBytes), report.trimmedBytes, report.message);
        break;
    case TrimOutcome::Skipped:
        fmt::print(out, "{}: skipped: {}\n", mountPoint, report.message);
        break;
    case TrimOutcome::Unsupported:
        fmt::print(out, "{}: unsupported: {}\n", mountPoint, report.message);
        break;
    case TrimOutcome::Failed:
        fmt::print(out, "{}: failed: {}\n", mountPoint, report.message);
        break;
    }
}

ProgressBar::ProgressBar(std::FILE* out, std::string label) : out_(out), label_(std::move(label)) {}

ProgressBar::~ProgressBar() {
    if (drawn_)
        fmt::print(out_, "\r\033[K");
    std::fflush(out_);
}

void ProgressBar::update(const TrimProgress& progress) {
    constexpr int kWidth = 30;
    double fraction = progress.fraction();
    int filled = static_cast<int>(fraction * kWidth);
    fmt::print(out_, "\r\033[K{} [{}{}] {:3.0f}%  {} trimmed", label_, std::string(filled, '#'),
               std::string(kWidth - filled, '.'), fraction * 100,
               formatSize(progress.trimmedBytes));
    std::fflush(out_);
    drawn_ = true;
}

int printVerifyResults(const std::vector<VerifyResult>& results, bool json,
                       std::string_view source) {
    bool dropped = false;
    nlohmann::json list = nlohmann::json::array();
    for (const VerifyResult& result : results) {
        const VerifyReport& report = result.report;
        dropped = dropped || report.verdict == VerifyVerdict::Dropped;
        if (json)
            list.push_back({
                {"mount_point", result.mountPoint},
                {"verdict", verifyVerdictName(report.verdict)},
                {"message", report.message},
                {"probe_bytes", report.probeBytes},
                {"checked_bytes", report.checkedBytes},
                {"unchanged_bytes", report.unchangedBytes},
                {"trimmed_bytes", report.trimmedBytes},
                {"reached_disk_bytes", report.reachedDiskBytes
                                           ? nlohmann::json(*report.reachedDiskBytes)
                                           : nlohmann::json()},
                {"duration_us", report.duration.count()},
            });
        else
            fmt::print("{}: {}: {}\n", result.mountPoint, verifyVerdictName(report.verdict),
                       report.message);
    }
    if (json)
        printJson({{"source", source}, {"results", list}});
    else if (results.empty())
        fmt::print("No eligible filesystem to verify.\n");
    return dropped ? kExitError : kExitOk;
}

void printColumns(std::FILE* out, const std::vector<std::vector<std::string>>& rows) {
    printTable(out, rows);
}

} // namespace thintrim::cli
