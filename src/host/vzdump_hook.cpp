// SPDX-License-Identifier: GPL-2.0-or-later
#include "vzdump_hook.h"

#include "base/error.h"
#include "base/text.h"
#include "base/units.h"
#include "base/utf8.h"
#include "monitor.h"
#include "prove.h"

#include <fmt/format.h>

namespace thintrim::host {

namespace {

bool takesModeAndVmid(const std::string& phase) {
    for (const char* known : {"backup-start", "backup-end", "backup-abort", "log-end", "pre-stop",
                              "pre-restart", "post-restart"}) {
        if (phase == known)
            return true;
    }
    return false;
}

bool isJobPhase(const std::string& phase) {
    return phase == "job-init" || phase == "job-start" || phase == "job-end" ||
           phase == "job-abort";
}

double seconds(std::chrono::steady_clock::duration elapsed) {
    return std::chrono::duration<double>(elapsed).count();
}

} // namespace

int runVzdumpHook(const VzdumpHookOptions& options, std::FILE* out) {
    if (options.args.empty())
        throw Error(ErrorCode::InvalidArgument,
                    "vzdump-hook: no phase given (vzdump calls it as PHASE [MODE VMID])");
    const std::string& phase = options.args.front();
    if (isJobPhase(phase))
        return 0;
    if (!takesModeAndVmid(phase)) {
        // A phase of a newer vzdump: nothing to do in it either.
        fmt::print(out, "thintrim-host: vzdump phase {} is not known here; nothing done\n",
                   escapeInvalidUtf8(phase));
        return 0;
    }
    // Even arguments vzdump should never pass are logged, not fatal: a hook
    // that fails stops the backup.
    if (options.args.size() < 3) {
        fmt::print(out, "thintrim-host: vzdump phase {} without MODE and VMID; nothing done\n",
                   escapeInvalidUtf8(phase));
        return 0;
    }
    if (phase != "backup-start")
        return 0;
    const std::string& mode = options.args[1];
    const std::string& vmid = options.args[2];
    if (!parseDecimal<unsigned>(vmid)) {
        fmt::print(out, "thintrim-host: vzdump VMID '{}' is not a number; nothing done\n",
                   escapeInvalidUtf8(vmid));
        return 0;
    }
    if (!options.vmType.empty() && options.vmType != "qemu") {
        fmt::print(out,
                   "thintrim-host: VM {} is a {} guest, not QEMU: no guest agent to ask for a "
                   "trim\n",
                   vmid, escapeInvalidUtf8(options.vmType));
        return 0;
    }
    const std::string socket = !options.agentSocket.empty()
                                   ? options.agentSocket
                                   : (options.proxmoxRunDir / (vmid + ".qga")).string();
    const auto started = std::chrono::steady_clock::now();
    try {
        GuestAgentClient agent = GuestAgentClient::connect(socket, options.requestTimeout);
        const GuestTrim trim = trimInGuest(agent, options.trimTimeout);
        const double took = seconds(std::chrono::steady_clock::now() - started);
        if (trim.exitCode != 0)
            fmt::print(out,
                       "thintrim-host: VM {}: `{}` in the guest exited {} after {:.1f}s, {} "
                       "trimmed{}; the {} backup goes on\n",
                       vmid, trim.command, trim.exitCode, took, formatSize(trim.trimmedBytes()),
                       trim.error.empty()
                           ? std::string()
                           : fmt::format(" ({})", escapeInvalidUtf8(
                                                      trim.error.substr(0, trim.error.find('\n')))),
                       mode);
        else
            fmt::print(out,
                       "thintrim-host: VM {}: the guest trimmed {} on {} filesystem(s) in "
                       "{:.1f}s (`{}`) before the {} backup\n",
                       vmid, formatSize(trim.trimmedBytes()), trim.filesystems.size(), took,
                       trim.command, mode);
    } catch (const Error& e) {
        fmt::print(out,
                   "thintrim-host: VM {}: no trim before the backup after {:.1f}s: {}; the {} "
                   "backup goes on\n",
                   vmid, seconds(std::chrono::steady_clock::now() - started), e.what(), mode);
    }
    return 0;
}

} // namespace thintrim::host
