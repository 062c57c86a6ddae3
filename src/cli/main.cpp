// SPDX-License-Identifier: GPL-2.0-or-later
// thintrim: the command-line client. Local mode reads the system directly and
// trims in-process; every failure ends in main()'s single error boundary.
#include "base/error.h"
#include "base/units.h"
#include "build_config.h"
#include "config/config.h"
#include "discovery/catalog.h"
#include "engine/diagnose.h"
#include "engine/engine.h"
#include "exit_codes.h"
#include "remote.h"
#include "render.h"
#include "trim/receipts.h"
#include "trim/trim.h"
#include "trim/verify.h"

#include <cstdio>
#include <optional>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

namespace thintrim::cli {

namespace {

struct GlobalOptions {
    SystemPaths paths;
    bool json = false;
    RenderOptions render;
    bool noAskPassword = false;
    std::string configFile; // --config: the configuration to apply locally
};

struct TrimCommand {
    std::vector<std::string> mountPoints;
    bool all = false;
    bool local = false;
    bool dryRun = false;
    bool noWait = false;
    std::string minimum;
    std::string rate;
    std::string chunk;
};

// The configuration applied when reading or trimming here, without the
// daemon: the one named by --config, or the daemon's own.
ConfigPaths configPaths(const GlobalOptions& options) {
    return options.configFile.empty() ? ConfigPaths::installed()
                                      : ConfigPaths::explicitFile(options.configFile);
}

// What the daemon's [Filesystems] section makes it skip, for the read
// commands. A broken installed file must not stop them (doctor is what one
// runs then): it is named, and the defaults apply. A file named with
// --config must be right.
InventoryOptions readingOptions(const GlobalOptions& options) {
    try {
        return inventoryOptions(loadConfig(configPaths(options)).filesystems);
    } catch (const Error& e) {
        if (!options.configFile.empty())
            throw;
        fmt::print(stderr, "thintrim: {}; reading with the default configuration.\n", e.what());
        return {};
    }
}

std::vector<CatalogEntry> readCatalog(const GlobalOptions& options, const InventoryOptions& rules) {
    return buildCatalog(options.paths, readInventory(options.paths, rules), rules);
}

remote::RemoteOptions remoteOptions(const GlobalOptions& options) {
    return {options.json, options.render, !options.noAskPassword};
}

// Read commands work without the daemon; they say so, on stderr so that
// --json output stays clean.
void noteLocal() {
    fmt::print(stderr, "thintrimd is not running: reading the system directly.\n");
}

int runList(const GlobalOptions& options, bool all) {
    if (!all && remote::daemonReachable())
        return remote::list(remoteOptions(options));
    if (!all)
        noteLocal();
    const InventoryOptions rules = readingOptions(options);
    Inventory inventory = readInventory(options.paths, rules);
    // Without --all the skipped mounts are only counted: with 10,000 mounts
    // (containers) they are most of the table, not worth walking and holding.
    std::size_t skipped = 0;
    if (!all)
        skipped =
            std::erase_if(inventory.mounts, [](const Mount& mount) { return !mount.isManaged(); });
    auto catalog = buildCatalog(options.paths, std::move(inventory), rules);
    if (options.json) {
        nlohmann::json list = nlohmann::json::array();
        for (const CatalogEntry& entry : catalog) {
            if (all || entry.mount.isManaged())
                list.push_back(listEntryJson(entryJson(entry)));
        }
        printJson({{"source", "local"}, {"filesystems", list}});
        return kExitOk;
    }
    printList(stdout, catalog, all, options.render, skipped);
    return kExitOk;
}

int runStack(const GlobalOptions& options, const std::string& target) {
    auto catalog = readCatalog(options, readingOptions(options));
    std::string title;
    std::optional<BlockStack> stack;
    nlohmann::json json;
    if (const CatalogEntry* entry = findEntry(catalog, target)) {
        const Mount& mount = entry->mount;
        if (!entry->stack)
            throw Error(ErrorCode::NotEligible,
                        fmt::format("{} ({}) is not on a block device: {}", mount.mountPoint,
                                    mount.fsType, entry->reason()));
        stack = *entry->stack;
        title = fmt::format("{} ({} on {})", mount.mountPoint, mount.fsType, mount.source);
        json = entryJson(*entry);
    } else if (auto device = deviceNumberOf(options.paths, target)) {
        stack = walkBlockStack(options.paths, {*device});
        title = fmt::format("{} ({})", target, device->toString());
        json = {{"device", device->toString()}, {"source", target}};
    } else {
        throw Error(ErrorCode::InvalidArgument,
                    fmt::format("{} is neither a mount point nor a block device", target));
    }
    if (options.json) {
        json.update(stackJson(*stack));
        printJson(json);
        return kExitOk;
    }
    printStack(stdout, title, *stack, options.render);
    return kExitOk;
}

// Exit 1 when a filesystem cannot pass discards, so that scripts and
// monitoring can act on `thintrim doctor` alone.
int runDoctor(const GlobalOptions& options) {
    const bool viaDaemon = remote::daemonReachable();
    if (!viaDaemon)
        noteLocal();
    std::vector<Finding> findings;
    if (viaDaemon) {
        findings = remote::diagnose();
    } else {
        const std::vector<CatalogEntry> catalog = readCatalog(options, readingOptions(options));
        findings = runDiagnosis(options.paths, catalog);
        // No history here: it suggests `thintrim verify`.
        for (Finding& finding : proofFindings(catalog, nullptr))
            findings.push_back(std::move(finding));
    }
    if (options.json)
        printJson(
            {{"source", viaDaemon ? "daemon" : "local"}, {"findings", findingsJson(findings)}});
    else
        printFindings(stdout, findings);
    const bool anyError = std::any_of(findings.begin(), findings.end(), [](const Finding& finding) {
        return finding.severity == Severity::Error;
    });
    return anyError ? kExitError : kExitOk;
}

// What the user gave on the command line; the rest comes from the
// configuration (the daemon's for a daemon trim, the one read here for --local).
struct GivenTrimOptions {
    std::optional<std::uint64_t> minimumExtent;
    std::optional<std::uint64_t> rateLimit;
    std::optional<std::uint64_t> chunkSize;
};

GivenTrimOptions trimOptionsFrom(const TrimCommand& command) {
    GivenTrimOptions options;
    if (!command.minimum.empty())
        options.minimumExtent = parseSize(command.minimum, "--minimum");
    if (!command.rate.empty())
        options.rateLimit = parseRate(command.rate, "--rate");
    if (!command.chunk.empty())
        options.chunkSize = parseSize(command.chunk, "--chunk");
    return options;
}

// Ctrl-C and SIGTERM stop the running trim at the next chunk boundary, so the
// report still says how far it got. Blocked here, taken with sigtimedwait().
sigset_t blockStopSignals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    return signals;
}

// Waits up to `timeout` for SIGINT or SIGTERM; true when one came.
bool stopSignalWithin(const sigset_t& signals, Microseconds timeout) {
    const auto count = std::max<Microseconds::rep>(timeout.count(), 0);
    const timespec wait{static_cast<time_t>(count / 1'000'000),
                        static_cast<long>(count % 1'000'000) * 1000};
    return sigtimedwait(&signals, nullptr, &wait) > 0;
}

// The mounts of a local trim as the catalog read at its start has them.
class CatalogResolver final : public MountResolver {
public:
    explicit CatalogResolver(const std::vector<CatalogEntry>& catalog) : catalog_(catalog) {}
    Resolution resolve(const std::string& mountPoint) override {
        const CatalogEntry* entry = findEntry(catalog_, mountPoint);
        if (entry == nullptr)
            return {std::nullopt, "not mounted any more"};
        if (!entry->eligible())
            return {std::nullopt, "not eligible: " + entry->reason()};
        return {entry->mount, {}};
    }

private:
    const std::vector<CatalogEntry>& catalog_;
};

int runTrimLocal(const GlobalOptions& options, const TrimCommand& command) {
    if (command.mountPoints.empty() && !command.all)
        throw Error(ErrorCode::InvalidArgument, "name the mount points to trim, or use --all");
    if (geteuid() != 0 && !command.dryRun)
        throw Error(ErrorCode::AccessDenied,
                    "trim --local needs root: the kernel allows FITRIM only with CAP_SYS_ADMIN");
    // The daemon's rules: [Filesystems] chooses, [Trim] gives the defaults.
    const Config config = loadConfig(configPaths(options));
    const GivenTrimOptions given = trimOptionsFrom(command);
    JobOptions job;
    job.dryRun = command.dryRun;
    job.minimumExtent = given.minimumExtent.value_or(config.trim.minimumExtent);
    job.rateLimit = given.rateLimit.value_or(config.trim.rateLimit);
    job.chunkSize = given.chunkSize.value_or(config.trim.chunkSize);

    const std::vector<CatalogEntry> catalog =
        readCatalog(options, inventoryOptions(config.filesystems));
    // Like the daemon's Trim: resolve every named mount first, trim nothing
    // if one of them cannot be trimmed.
    std::vector<std::string> targets;
    if (command.all) {
        for (const CatalogEntry& entry : catalog) {
            if (entry.mount.isManaged())
                targets.push_back(entry.mount.mountPoint);
        }
    }
    for (const std::string& mountPoint : command.mountPoints) {
        const CatalogEntry* entry = findEntry(catalog, mountPoint);
        if (entry == nullptr)
            throw Error(ErrorCode::NotManaged, fmt::format("{} is not a mount point", mountPoint));
        if (!entry->mount.isManaged())
            throw Error(ErrorCode::NotManaged,
                        fmt::format("{} is not trimmed: {}", mountPoint, entry->reason()));
        if (!entry->eligible())
            throw Error(ErrorCode::NotEligible,
                        fmt::format("{} cannot pass discards: {}", mountPoint, entry->reason()));
        if (std::find(targets.begin(), targets.end(), entry->mount.mountPoint) == targets.end())
            targets.push_back(entry->mount.mountPoint);
    }

    const sigset_t signals = blockStopSignals();
    const bool showProgress = !options.json && isatty(STDOUT_FILENO);
    TrimResults results(options.json, !command.all);
    std::optional<ProgressBar> bar;
    bool stopped = false;
    LocalJobHooks hooks;
    std::optional<ReceiptMeter> receipt;
    hooks.starting = [&](const Mount& mount) {
        receipt.reset();
        if (const CatalogEntry* entry = findEntry(catalog, mount.mountPoint); entry && entry->stack)
            receipt.emplace(options.paths, *entry->stack);
        if (showProgress)
            bar.emplace(stdout, mount.mountPoint);
    };
    hooks.progress = [&bar](const TrimProgress& progress) {
        if (bar)
            bar->update(progress);
    };
    hooks.finished = [&](const FilesystemReport& report) {
        bar.reset();
        TrimReport trim = report.trim;
        if (!trim.reachedDiskBytes && receipt && report.mount)
            trim.reachedDiskBytes = receipt->finish();
        receipt.reset();
        results.add(report.mountPoint, trim);
    };
    hooks.stopRequested = [&](Microseconds timeout) {
        stopped = stopped || stopSignalWithin(signals, timeout);
        return stopped;
    };
    CatalogResolver resolver{catalog};
    (void)runLocalJob(resolver, std::move(targets), job, hooks);
    if (options.json)
        printJson({{"results", results.json()}});
    if (stopped)
        return kExitError;
    return results.exitCode();
}

int runTrim(const GlobalOptions& options, const TrimCommand& command) {
    if (command.local)
        return runTrimLocal(options, command);
    if (command.mountPoints.empty() && !command.all)
        throw Error(ErrorCode::InvalidArgument, "name the mount points to trim, or use --all");
    remote::TrimRequest request;
    request.mountPoints = command.mountPoints;
    request.noWait = command.noWait;
    request.dryRun = command.dryRun;
    // Only what the user gave: the daemon's configuration fills in the rest.
    const GivenTrimOptions given = trimOptionsFrom(command);
    request.minimumExtent = given.minimumExtent;
    request.rateLimit = given.rateLimit;
    request.chunkSize = given.chunkSize;
    return remote::trim(remoteOptions(options), request);
}

int runVerifyLocal(const GlobalOptions& options, const std::vector<std::string>& mountPoints) {
    if (geteuid() != 0)
        throw Error(ErrorCode::AccessDenied,
                    "verify needs root: it writes a probe, issues FITRIM and reads the block "
                    "device (or ask thintrimd, which runs as root)");
    auto catalog = readCatalog(options, readingOptions(options));
    std::vector<const CatalogEntry*> targets;
    if (mountPoints.empty()) {
        for (const CatalogEntry& entry : catalog) {
            if (entry.eligible())
                targets.push_back(&entry);
        }
    }
    for (const std::string& mountPoint : mountPoints) {
        const CatalogEntry* entry = findEntry(catalog, mountPoint);
        if (entry == nullptr || !entry->mount.isManaged())
            throw Error(ErrorCode::NotManaged,
                        fmt::format("{} is not a filesystem thintrim manages", mountPoint));
        targets.push_back(entry);
    }
    const DmReader dmReader = systemDmReader(options.paths);
    std::vector<VerifyResult> results;
    for (const CatalogEntry* entry : targets) {
        const VerifyReport report = verifyFilesystem(
            options.paths, entry->mount, entry->stack ? &*entry->stack : nullptr, dmReader);
        results.push_back({entry->mount.mountPoint, report});
    }
    return printVerifyResults(results, options.json, "local");
}

int runVerify(const GlobalOptions& options, const std::vector<std::string>& mountPoints,
              bool local) {
    if (!local && remote::daemonReachable()) {
        const std::vector<VerifyResult> results =
            remote::verify(remoteOptions(options), mountPoints);
        return printVerifyResults(results, options.json, "daemon");
    }
    if (!local)
        noteLocal();
    return runVerifyLocal(options, mountPoints);
}

} // namespace

int run(int argc, char** argv) {
    CLI::App app{"thintrim: keep thin-provisioned virtual disks thin"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string(THINTRIM_VERSION));
    GlobalOptions options;
    for (const SystemPathOption& path : kSystemPathOptions)
        app.add_option(path.flag, options.paths.*path.member, path.help)->group("Testing");

    auto addReadFlags = [&options](CLI::App* command) {
        command->add_flag("--json", options.json, "Print JSON");
        command->add_flag("--bytes", options.render.exactBytes, "Print sizes in bytes");
    };
    // Read locally, the mounts are decided by [Filesystems] UserMedia= as
    // thintrimd decides them.
    auto addConfigOption = [&options](CLI::App* command) {
        command->add_option("--config", options.configFile,
                            "Without the daemon: the configuration to apply (default: the "
                            "installed one)");
    };

    bool listAll = false;
    CLI::App* list = app.add_subcommand("list", "List the filesystems thintrim would trim");
    list->add_flag("--all", listAll, "Also list the mounts that are skipped, and why");
    addReadFlags(list);
    addConfigOption(list);

    std::string stackTarget;
    CLI::App* stack = app.add_subcommand(
        "stack",
        "Show the block stack under a mount point or device and which layer drops discards");
    stack->add_option("target", stackTarget, "Mount point or block device")->required();
    addReadFlags(stack);
    addConfigOption(stack);

    TrimCommand trimCommand;
    CLI::App* trim = app.add_subcommand("trim", "Trim filesystems");
    trim->add_option("mountpoints", trimCommand.mountPoints, "Mount points to trim");
    trim->add_flag("--all", trimCommand.all, "Trim every eligible filesystem");
    trim->add_flag("--local", trimCommand.local, "Trim in this process, without the daemon (root)");
    trim->add_flag("--dry-run", trimCommand.dryRun, "Check and plan, but do not discard");
    trim->add_option("--minimum", trimCommand.minimum,
                     "Skip free extents smaller than SIZE (like fstrim --minimum)");
    trim->add_option("--rate", trimCommand.rate, "Trim at most SIZE per second (e.g. 200M/s)");
    trim->add_option("--chunk", trimCommand.chunk,
                     "Filesystem range per FITRIM call (default 1G; 0 = one call)");
    trim->add_flag("--no-wait", trimCommand.noWait,
                   "Return once the daemon has queued the job, print its id");
    trim->add_flag("--json", options.json, "Print results as JSON");
    trim->add_option("--config", options.configFile,
                     "With --local: the configuration to apply (default: the installed one)");

    CLI::App* doctor = app.add_subcommand(
        "doctor", "Check the whole discard chain (block stacks, swap, crypttab, lvm.conf, "
                  "fstrim.timer) and print the fix for each problem");
    doctor->add_flag("--json", options.json, "Print JSON");
    addConfigOption(doctor);

    std::vector<std::string> verifyMountPoints;
    bool verifyLocal = false;
    CLI::App* verify = app.add_subcommand(
        "verify", "Prove that discards free space below the guest: write a probe, discard it, "
                  "read the device (exit 1 when they are dropped)");
    verify->add_option("mountpoints", verifyMountPoints,
                       "Mount points to verify (default: every eligible filesystem)");
    verify->add_flag("--local", verifyLocal, "Verify in this process, without the daemon (root)");
    verify->add_flag("--json", options.json, "Print JSON");

    CLI::App* status = app.add_subcommand("status", "Show the daemon's state and history");
    addReadFlags(status);
    addConfigOption(status);
    std::uint64_t cancelJob = 0;
    CLI::App* cancel = app.add_subcommand("cancel", "Cancel a trim job (default: the running one)");
    cancel->add_option("job", cancelJob, "Job id (0 = the running job)");
    CLI::App* suspend =
        app.add_subcommand("suspend", "Pause scheduled and running trims, across restarts");
    CLI::App* resume = app.add_subcommand("resume", "Continue where suspend stopped");
    CLI::App* reload = app.add_subcommand("reload", "Make the daemon re-read its configuration");
    for (CLI::App* changing : {trim, verify, cancel, suspend, resume, reload})
        changing->add_flag("--no-ask-password", options.noAskPassword,
                           "Do not let polkit ask for a password: without root or a polkit "
                           "rule that allows it, fail instead");
    trim->footer("Trimmed bytes are what the kernel reports: ext4 counts space freed since its "
                 "last trim of a block group; xfs and btrfs count all free space every time.");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? kExitOk : kExitUsage;
    }

    if (list->parsed())
        return runList(options, listAll);
    if (stack->parsed())
        return runStack(options, stackTarget);
    if (doctor->parsed())
        return runDoctor(options);
    if (verify->parsed())
        return runVerify(options, verifyMountPoints, verifyLocal);
    if (status->parsed()) {
        // Without a running daemon there is no schedule to show: the
        // inventory read locally, as `list` prints it.
        if (!remote::daemonReachable())
            return runList(options, false);
        return remote::status(remoteOptions(options));
    }
    if (cancel->parsed())
        return remote::cancel(remoteOptions(options), cancelJob);
    if (suspend->parsed())
        return remote::suspend(remoteOptions(options));
    if (resume->parsed())
        return remote::resume(remoteOptions(options));
    if (reload->parsed())
        return remote::reload(remoteOptions(options));
    return runTrim(options, trimCommand);
}

} // namespace thintrim::cli

int main(int argc, char** argv) {
    try {
        return thintrim::cli::run(argc, argv);
    } catch (const thintrim::Error& e) {
        fmt::print(stderr, "thintrim: {}\n", e.what());
        return thintrim::cli::kExitError;
    } catch (const std::exception& e) {
        fmt::print(stderr, "thintrim: unexpected error: {}\n", e.what());
        return thintrim::cli::kExitError;
    }
}
