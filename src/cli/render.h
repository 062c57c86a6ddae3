// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "discovery/catalog.h"
#include "engine/diagnose.h"
#include "trim/trim.h"
#include "trim/verify.h"

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace thintrim::cli {

struct RenderOptions {
    bool exactBytes = false; // --bytes
};

[[nodiscard]] std::string sizeText(std::uint64_t bytes, const RenderOptions& options);

[[nodiscard]] nlohmann::json layerJson(const Layer& layer);
[[nodiscard]] nlohmann::json entryJson(const CatalogEntry& entry);
// One filesystem of `list --json` (and of `status --json`), whether read
// through the daemon or locally: every key of thintrim(1)'s schema, null
// where that reading cannot know the value (the history without the daemon;
// the mount's root and block devices through it). Throws on a key outside
// the schema, so that the two readings cannot drift apart again.
[[nodiscard]] nlohmann::json listEntryJson(nlohmann::json entry);
// The keys of listEntryJson() that are no Filesystem property: what only
// the local inventory knows (and "managed", true for all the daemon lists).
inline constexpr auto kInventoryOnlyKeys = std::to_array<std::string_view>(
    {"root", "block_devices", "managed", "skip_reason", "skip_detail"});
[[nodiscard]] nlohmann::json stackJson(const BlockStack& stack);
[[nodiscard]] nlohmann::json reportJson(const std::string& mountPoint, const TrimReport& report);

// Pretty-printed JSON on stdout.
void printJson(const nlohmann::json& json);

// `alsoSkipped`: skipped mounts the caller left out of `catalog`, counted in
// the hint to --all.
void printList(std::FILE* out, const std::vector<CatalogEntry>& catalog, bool all,
               const RenderOptions& options, std::size_t alsoSkipped = 0);
// `lsblk -D`-like tree with the verdict under it.
void printStack(std::FILE* out, const std::string& title, const BlockStack& stack,
                const RenderOptions& options);
// One line per filesystem, as `fstrim -v` prints it.
void printReport(std::FILE* out, const std::string& mountPoint, const TrimReport& report);

// `thintrim doctor`: one line per finding in the order of the checks, its
// fix indented under it, then the count per severity.
void printFindings(std::FILE* out, const std::vector<Finding>& findings);
[[nodiscard]] nlohmann::json findingsJson(const std::vector<Finding>& findings);

// Results of one trim run, local or through the daemon: printed as they come
// (or collected for --json) and counted the way fstrim counts them.
class TrimResults {
public:
    // Unsupported is a failure only for mount points the user named; with
    // --all it is not (fstrim -A agrees).
    TrimResults(bool json, bool namedMountPoints) : json_(json), named_(namedMountPoints) {}
    void add(const std::string& mountPoint, const TrimReport& report);
    [[nodiscard]] const nlohmann::json& json() const { return results_; }
    // 0 when nothing failed, 32 when every attempt failed, 64 otherwise.
    [[nodiscard]] int exitCode() const;

private:
    bool json_;
    bool named_;
    nlohmann::json results_ = nlohmann::json::array();
    unsigned attempted_ = 0;
    unsigned failed_ = 0;
};

// A one-line progress bar redrawn in place on a terminal.
class ProgressBar {
public:
    ProgressBar(std::FILE* out, std::string label);
    ~ProgressBar();
    ProgressBar(const ProgressBar&) = delete;
    ProgressBar& operator=(const ProgressBar&) = delete;
    void update(const TrimProgress& progress);

private:
    std::FILE* out_;
    std::string label_;
    bool drawn_ = false;
};

// One filesystem's verify, local or from the daemon.
struct VerifyResult {
    std::string mountPoint;
    VerifyReport report;
};
// Prints one line per filesystem ("MOUNT: dropped: why"), or JSON with
// `source`; returns 1 when a verdict is dropped, else 0.
int printVerifyResults(const std::vector<VerifyResult>& results, bool json,
                       std::string_view source);

// Left-aligned columns, two spaces apart, the first row a header: the
// tables of `list` and `status`, for callers outside this file.
void printColumns(std::FILE* out, const std::vector<std::vector<std::string>>& rows);

} // namespace thintrim::cli
