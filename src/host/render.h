// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "audit.h"
#include "prove.h"

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace thintrim::host {

// The --json schema of `audit` (schema 1): {"schema": 1, "disks": [...],
// "problems": [...]}, each disk with at least vm, disk, image, bus, discard,
// allocated_bytes, size_bytes and findings [{severity, message, fix}].
// Unknown values are null, never left out.
[[nodiscard]] nlohmann::json auditJson(const AuditReport& report);
[[nodiscard]] nlohmann::json diskJson(const AuditedDisk& disk);
[[nodiscard]] nlohmann::json proveJson(const ProveReport& report);

// Every string valid UTF-8 (paths and names come from files), then dump.
[[nodiscard]] std::string dumpJson(const nlohmann::json& json);

void printAudit(std::FILE* out, const AuditReport& report, bool exactBytes);
void printProve(std::FILE* out, const ProveReport& report, bool exactBytes);

// Prometheus text format, for node_exporter's textfile collector.
[[nodiscard]] std::string auditMetrics(const AuditReport& report);
[[nodiscard]] std::string proveMetrics(const ProveReport& report);

} // namespace thintrim::host
