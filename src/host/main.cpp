// SPDX-License-Identifier: GPL-2.0-or-later
// thintrim-host: the host side. Audits what every VM disk does with the
// guest's discards and proves, on a running VM, where freed space stops.
// Read-only except `prove`, which asks the guest to trim.
#include "audit.h"
#include "base/atomic_file.h"
#include "base/error.h"
#include "base/units.h"
#include "build_config.h"
#include "prove.h"
#include "render.h"
#include "vzdump_hook.h"

#include <cstdio>
#include <cstdlib>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace thintrim::host {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFindings = 1; // also every error
constexpr int kExitUsage = 2;

struct Options {
    AuditRoots roots;
    bool json = false;
    bool exactBytes = false;
    bool noQmp = false;
    std::string prometheusFile;
    std::string timeout = "5s";
    std::string trimTimeout = "30min";
};

std::chrono::milliseconds milliseconds(const std::string& text, std::string_view what) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(parseDuration(text, what));
}

ImageProbe systemProbe(const std::chrono::milliseconds timeout) {
    SystemPaths paths;
    return {"/", systemDmReader(paths), systemCommandRunner(timeout)};
}

void writeMetrics(const std::string& file, const std::string& text) {
    if (file.empty())
        return;
    const std::filesystem::path path(file);
    // node_exporter reads it as another user: world-readable whatever the umask.
    writeFileAtomically(path, "." + path.filename().string() + ".tmp", text, 0644, true);
}

int runAuditCommand(const Options& options) {
    const auto timeout = milliseconds(options.timeout, "--timeout");
    const AuditReport report = runAudit(options.roots, systemProbe(timeout),
                                        options.noQmp ? QmpReader{} : systemQmpReader(timeout));
    writeMetrics(options.prometheusFile, auditMetrics(report));
    if (options.json)
        fmt::print("{}\n", dumpJson(auditJson(report)));
    else
        printAudit(stdout, report, options.exactBytes);
    const bool anyError = std::any_of(report.disks.begin(), report.disks.end(), [](const auto& d) {
        return std::any_of(d.findings.begin(), d.findings.end(), [](const HostFinding& f) {
            return f.severity == FindingSeverity::Error;
        });
    });
    return anyError ? kExitFindings : kExitOk;
}

int runProveCommand(const Options& options, ProveOptions prove) {
    prove.roots = options.roots;
    prove.requestTimeout = milliseconds(options.timeout, "--timeout");
    prove.trimTimeout = milliseconds(options.trimTimeout, "--trim-timeout");
    const ProveReport report = runProve(prove, systemProbe(prove.requestTimeout));
    writeMetrics(options.prometheusFile, proveMetrics(report));
    if (options.json)
        fmt::print("{}\n", dumpJson(proveJson(report)));
    else
        printProve(stdout, report, options.exactBytes);
    // Disks the guest trimmed nothing on prove nothing either way; at least
    // one must have given space back.
    const bool allCameBack =
        std::all_of(report.disks.begin(), report.disks.end(),
                    [](const DiskProof& proof) {
                        return proof.verdict == StopLayer::None ||
                               proof.verdict == StopLayer::NothingTrimmed;
                    }) &&
        std::any_of(report.disks.begin(), report.disks.end(),
                    [](const DiskProof& proof) { return proof.verdict == StopLayer::None; });
    return allCameBack ? kExitOk : kExitFindings;
}

int run(int argc, char** argv) {
    CLI::App app{"thintrim-host: what the host does with the discards of its VMs' guests"};
    app.set_version_flag("--version", THINTRIM_VERSION);
    app.require_subcommand(1);
    Options options;
    std::string pveDir = options.roots.pveDir;
    std::string libvirtDir = options.roots.libvirtDir;
    std::string procRoot = options.roots.procRoot;
    app.add_option("--pve-dir", pveDir, "Read Proxmox VE's configuration under DIR (/etc/pve)")
        ->group("Testing");
    app.add_option("--libvirt-dir", libvirtDir,
                   "Read libvirt's domain definitions from DIR (/etc/libvirt/qemu)")
        ->group("Testing");
    app.add_option("--proc", procRoot, "Read QEMU processes under DIR (/proc)")->group("Testing");

    CLI::App* audit =
        app.add_subcommand("audit", "Every VM disk this host knows of, what it does with "
                                    "discards, and the fix for what keeps space allocated");
    ProveOptions prove;
    CLI::App* proveCommand = app.add_subcommand(
        "prove", "Trim a running VM's guest through its agent and show, per disk, where the "
                 "freed space stopped");
    proveCommand->add_option("vm", prove.vm, "VMID (Proxmox), domain name (libvirt) or -name")
        ->required();
    proveCommand->add_option("--qga", prove.agentSocket, "The guest agent's unix socket");
    proveCommand->add_option("--qmp", prove.qmpSocket, "QEMU's QMP unix socket");
    proveCommand->add_option("--trim-timeout", options.trimTimeout,
                             "Give the trim in the guest this long (default 30min)");
    int pid = 0;
    for (CLI::App* command : {audit, proveCommand}) {
        command->add_flag("--json", options.json, "Print JSON");
        command->add_flag("--bytes", options.exactBytes, "Print sizes in bytes");
        command->add_option("--prometheus", options.prometheusFile,
                            "Also write the results to FILE in Prometheus' text format "
                            "(node_exporter's textfile collector)");
        command->add_option("--pid", pid, "Only the QEMU process PID");
        command->add_option("--timeout", options.timeout,
                            "Wait this long for each QMP or agent answer (default 5s)");
    }
    VzdumpHookOptions hook;
    std::string hookTrimTimeout = "5min";
    CLI::App* hookCommand = app.add_subcommand(
        "vzdump-hook", "Proxmox VE vzdump hook: in phase backup-start, ask the VM's guest to "
                       "trim and wait a bounded time; never fails the backup");
    hookCommand
        ->add_option("phase", hook.args,
                     "What vzdump passes: PHASE [MODE VMID] (backup-start snapshot 100)")
        ->required();
    hookCommand->add_option(
        "--qga", hook.agentSocket,
        "The guest agent's unix socket (default /var/run/qemu-server/VMID.qga)");
    hookCommand->add_option("--trim-timeout", hookTrimTimeout,
                            "Let the backup wait this long for the trim in the guest (default "
                            "5min)");
    hookCommand->add_option("--timeout", options.timeout,
                            "Wait this long for each agent answer (default 5s)");
    audit->add_option("--vm", options.roots.onlyVm, "Only this VM (VMID or name)");
    audit->add_flag("--no-qmp", options.noQmp, "Do not ask running QEMUs for their counters");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? kExitOk : kExitUsage;
    }
    options.roots.pveDir = pveDir;
    options.roots.libvirtDir = libvirtDir;
    options.roots.procRoot = procRoot;
    if (pid > 0)
        options.roots.onlyPid = pid;
    if (audit->parsed())
        return runAuditCommand(options);
    if (hookCommand->parsed()) {
        hook.requestTimeout = milliseconds(options.timeout, "--timeout");
        hook.trimTimeout = milliseconds(hookTrimTimeout, "--trim-timeout");
        if (const char* vmType = std::getenv("VMTYPE"))
            hook.vmType = vmType;
        const int code = runVzdumpHook(hook, stdout);
        std::fflush(stdout);
        return code;
    }
    return runProveCommand(options, prove);
}

} // namespace

} // namespace thintrim::host

int main(int argc, char** argv) {
    try {
        return thintrim::host::run(argc, argv);
    } catch (const thintrim::Error& e) {
        fmt::print(stderr, "thintrim-host: {}\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        fmt::print(stderr, "thintrim-host: unexpected error: {}\n", e.what());
        return 1;
    }
}
