// SPDX-License-Identifier: GPL-2.0-or-later
#include "remote.h"

#include "btrfs_discard.h"
#include "bus_names.h"
#include "interactive_authorization.h"
#include "polkit_agent.h"
#include "receipts.h"
#include "sdbus_compat.h"
#include "thintrim1_proxy.h"
#include "trim.h"
#include "unique_fd.h"
#include "units.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace thintrim::cli::remote {

namespace {

using Properties = dbus::PropertyMap;
constexpr const char* kManagerInterface = org::thintrim::ThinTrim1::Manager_proxy::INTERFACE_NAME;
constexpr const char* kFilesystemInterface =
    org::thintrim::ThinTrim1::Filesystem_proxy::INTERFACE_NAME;

// Every call to the bus goes through here, so that no D-Bus error reaches
// the user as a D-Bus name.
template <typename Call>
auto onBus(Call&& call) -> decltype(call()) {
    try {
        return call();
    } catch (const sdbus::Error& e) {
        throw errorFromBus(e);
    }
}

std::unique_ptr<sdbus::IConnection> connect() {
    return onBus([] { return dbus::connectSystemBus(); });
}

// Manager proxy: calls, properties and the signals a waiting `trim` follows.
class ManagerProxy final : public sdbus::ProxyInterfaces<org::thintrim::ThinTrim1::Manager_proxy,
                                                         sdbus::Properties_proxy> {
public:
    explicit ManagerProxy(sdbus::IConnection& bus)
        : ProxyInterfaces(bus, dbus::serviceName(dbus::kBusName),
                          dbus::objectPath(dbus::kManagerPath)) {
        registerProxy();
    }
    // For calls the generated methods cannot make (message flags).
    using ProxyInterfaces::getProxy;
    ~ManagerProxy() { unregisterProxy(); }
    ManagerProxy(const ManagerProxy&) = delete;
    ManagerProxy& operator=(const ManagerProxy&) = delete;

    std::function<void(std::uint64_t, const std::string&, const TrimReport&)> filesystemTrimmed;
    std::function<void(std::uint64_t, const std::string&, std::uint64_t)> jobFinished;
    std::function<void(const Properties&)> propertiesChanged;

private:
    // The job id from Trim's reply is all `trim` needs to know it started.
    void onJobStarted(const std::uint64_t& /*job*/,
                      const std::vector<std::string>& /*mountPoints*/) override {}
    void onFilesystemTrimmed(const std::uint64_t& job, const std::string& mountPoint,
                             const std::uint64_t& trimmedBytes, const std::uint64_t& duration,
                             const std::string& result, const std::string& message) override;
    void onJobFinished(const std::uint64_t& job, const std::string& result,
                       const std::uint64_t& trimmedBytes) override {
        if (jobFinished)
            jobFinished(job, result, trimmedBytes);
    }
    void onPropertiesChanged(const dbus::InterfaceName& interfaceName,
                             const dbus::ChangedProperties& changed,
                             const dbus::InvalidatedProperties& /*invalidated*/) override {
        if (interfaceName == kManagerInterface && propertiesChanged)
            propertiesChanged(dbus::plainKeys(changed));
    }
};

TrimOutcome outcomeFromName(std::string_view name) {
    for (TrimOutcome outcome : {TrimOutcome::Success, TrimOutcome::Unsupported, TrimOutcome::Failed,
                                TrimOutcome::Cancelled, TrimOutcome::Skipped}) {
        if (trimOutcomeName(outcome) == name)
            return outcome;
    }
    return TrimOutcome::Failed;
}

void ManagerProxy::onFilesystemTrimmed(const std::uint64_t& job, const std::string& mountPoint,
                                       const std::uint64_t& trimmedBytes,
                                       const std::uint64_t& duration, const std::string& result,
                                       const std::string& message) {
    if (!filesystemTrimmed)
        return;
    TrimReport report;
    report.outcome = outcomeFromName(result);
    report.trimmedBytes = trimmedBytes;
    report.duration = Microseconds(static_cast<Microseconds::rep>(duration));
    report.message = message;
    filesystemTrimmed(job, mountPoint, report);
}

template <typename Value>
Value property(const Properties& properties, const std::string& name, Value fallback = {}) {
    auto found = properties.find(name);
    if (found == properties.end() || !found->second.containsValueOfType<Value>())
        return fallback;
    return found->second.get<Value>();
}

Microseconds asTime(std::uint64_t value) {
    return Microseconds(static_cast<Microseconds::rep>(value));
}

std::string whenText(std::uint64_t at, Microseconds now) {
    return at == 0 ? std::string("-") : formatRelative(asTime(at), now);
}

// Every managed filesystem's properties, in mount point order (one call).
std::vector<Properties> readFilesystems(sdbus::IConnection& bus) {
    auto proxy = dbus::createProxy(bus, dbus::kBusName, dbus::kManagerPath);
    std::map<sdbus::ObjectPath, std::map<std::string, Properties>> objects;
    onBus([&] {
        proxy->callMethod("GetManagedObjects")
            .onInterface("org.freedesktop.DBus.ObjectManager")
            .storeResultsTo(objects);
    });
    std::map<std::string, Properties> byMountPoint;
    for (auto& [path, interfaces] : objects) {
        auto found = interfaces.find(kFilesystemInterface);
        if (found == interfaces.end())
            continue;
        byMountPoint[property<std::string>(found->second, "MountPoint")] = found->second;
    }
    std::vector<Properties> filesystems;
    for (auto& [mountPoint, properties] : byMountPoint)
        filesystems.push_back(std::move(properties));
    return filesystems;
}

Properties readManager(ManagerProxy& manager) {
    return onBus([&] { return dbus::plainKeys(manager.GetAll(kManagerInterface)); });
}

std::string eligibleText(const Properties& fs) {
    return property<bool>(fs, "Eligible") ? "yes" : "no: " + property<std::string>(fs, "Reason");
}

std::string lastTrimText(const Properties& fs, Microseconds now) {
    const std::string result = property<std::string>(fs, "LastTrimResult", "never");
    if (result == "never")
        return "never";
    const std::string when = whenText(property<std::uint64_t>(fs, "LastTrimFinished"), now);
    return result == "success" ? when : fmt::format("{} ({})", when, result);
}

// A size that may be unknown (dbus::kUnknownBytes) as a number or null.
nlohmann::json knownBytesJson(const Properties& fs, const std::string& name) {
    const std::uint64_t bytes = property<std::uint64_t>(fs, name, dbus::kUnknownBytes);
    return bytes == dbus::kUnknownBytes ? nlohmann::json() : nlohmann::json(bytes);
}

nlohmann::json filesystemJson(const Properties& fs) {
    return {
        {"mount_point", property<std::string>(fs, "MountPoint")},
        {"source", property<std::string>(fs, "Source")},
        {"device", property<std::string>(fs, "DeviceNumber")},
        {"fstype", property<std::string>(fs, "FsType")},
        {"uuid", property<std::string>(fs, "UUID")},
        {"label", property<std::string>(fs, "Label")},
        {"size", property<std::uint64_t>(fs, "Size")},
        {"free_bytes", property<std::uint64_t>(fs, "FreeBytes")},
        {"options", property<std::string>(fs, "MountOptions")},
        {"managed", true},
        {"eligible", property<bool>(fs, "Eligible")},
        {"reason", property<std::string>(fs, "Reason")},
        {"discard_max_bytes", property<std::uint64_t>(fs, "DiscardMaxBytes")},
        {"discard_granularity", property<std::uint64_t>(fs, "DiscardGranularity")},
        {"last_trim_started", property<std::uint64_t>(fs, "LastTrimStarted")},
        {"last_trim_finished", property<std::uint64_t>(fs, "LastTrimFinished")},
        {"last_trimmed_bytes", property<std::uint64_t>(fs, "LastTrimmedBytes")},
        {"last_trim_duration_us", property<std::uint64_t>(fs, "LastTrimDuration")},
        {"last_trim_result", property<std::string>(fs, "LastTrimResult", "never")},
        {"last_trim_message", property<std::string>(fs, "LastTrimMessage")},
        {"total_trimmed_bytes", property<std::uint64_t>(fs, "TotalTrimmedBytes")},
        {"trim_count", property<std::uint64_t>(fs, "TrimCount")},
        {"next_scheduled_trim", property<std::uint64_t>(fs, "NextScheduledTrim")},
        {"freed_since_last_trim", property<std::uint64_t>(fs, "FreedSinceLastTrim")},
        {"last_reached_disk_bytes", knownBytesJson(fs, "LastReachedDiskBytes")},
        {"total_reached_disk_bytes", property<std::uint64_t>(fs, "TotalReachedDiskBytes")},
        {"last_verify_result", property<std::string>(fs, "LastVerifyResult", "never")},
        {"last_verify_time", property<std::uint64_t>(fs, "LastVerifyTime")},
        {"last_verify_message", property<std::string>(fs, "LastVerifyMessage")},
        {"async_discard", property<bool>(fs, "AsyncDiscard")},
        {"discard_backlog_bytes", property<std::uint64_t>(fs, "DiscardBacklogBytes")},
    };
}

// The receipts column: what reached the disks, "-" when unknown or never.
std::string reachedText(const Properties& fs, const RenderOptions& render) {
    const std::uint64_t bytes =
        property<std::uint64_t>(fs, "LastReachedDiskBytes", dbus::kUnknownBytes);
    if (bytes == dbus::kUnknownBytes ||
        property<std::string>(fs, "LastTrimResult", "never") == "never")
        return "-";
    return sizeText(bytes, render);
}

// What status says under the table: swallowed discards, dropped verdicts,
// btrfs discard=async.
std::vector<std::string> filesystemNotes(const Properties& fs) {
    std::vector<std::string> notes;
    const std::string mountPoint = property<std::string>(fs, "MountPoint");
    const std::uint64_t reached =
        property<std::uint64_t>(fs, "LastReachedDiskBytes", dbus::kUnknownBytes);
    const std::uint64_t trimmed = property<std::uint64_t>(fs, "LastTrimmedBytes");
    if (property<std::string>(fs, "LastTrimResult", "never") == "success" &&
        discardsSwallowed(trimmed,
                          reached == dbus::kUnknownBytes ? std::nullopt : std::optional(reached)))
        notes.push_back(fmt::format("{}: {}", mountPoint, swallowedSentence(trimmed)));
    const std::string verdict = property<std::string>(fs, "LastVerifyResult", "never");
    if (verdict == "dropped")
        notes.push_back(fmt::format("{}: verify says discards are dropped: {}", mountPoint,
                                    property<std::string>(fs, "LastVerifyMessage")));
    if (property<bool>(fs, "AsyncDiscard"))
        notes.push_back(
            fmt::format("{}: {}", mountPoint,
                        btrfsAsyncSentence({property<std::uint64_t>(fs, "DiscardBacklogBytes")})));
    return notes;
}

// Dispatches the connection's signals until `done()` or until Ctrl-C (then
// false). Throws when the daemon leaves the bus meanwhile.
bool waitUntil(sdbus::IConnection& bus, const std::function<bool()>& done) {
    bool daemonLeft = false;
    auto busDaemon = dbus::createProxy(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus");
    busDaemon->uponSignal("NameOwnerChanged")
        .onInterface("org.freedesktop.DBus")
        .call([&daemonLeft](const std::string& name, const std::string& /*old*/,
                            const std::string& owner) {
            if (name == dbus::kBusName && owner.empty())
                daemonLeft = true;
        });
    dbus::finishRegistration(*busDaemon);

    sigset_t interrupt;
    sigemptyset(&interrupt);
    sigaddset(&interrupt, SIGINT);
    sigaddset(&interrupt, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &interrupt, nullptr);
    // Without it (fd limit), Ctrl-C just ends the process: the job goes on.
    const UniqueFd interrupted{::signalfd(-1, &interrupt, SFD_CLOEXEC)};
    const int signalFd = interrupted.get();
    if (signalFd < 0)
        pthread_sigmask(SIG_UNBLOCK, &interrupt, nullptr);

    for (;;) {
        onBus([&] {
            while (dbus::processPending(bus)) {
            }
        });
        if (done())
            return true;
        if (daemonLeft)
            throw Error(ErrorCode::System, "thintrimd stopped before the job finished; it "
                                           "continues when thintrimd starts again");
        dbus::BusPoll poll = dbus::busPoll(bus);
        const std::size_t busFds = poll.fds.size();
        if (signalFd >= 0)
            poll.fds.push_back({signalFd, POLLIN, 0});
        if (::poll(poll.fds.data(), poll.fds.size(), poll.timeoutMs) < 0 && errno != EINTR)
            throwSystemError("poll", errno);
        if (signalFd >= 0 && (poll.fds[busFds].revents & POLLIN) != 0)
            return false;
    }
}

// Long enough to type a password when polkit asks for one; the daemon gives
// polkit two minutes.
constexpr auto kInteractiveCallTimeout = std::chrono::seconds(130);

// A Manager method that changes something (Trim, Cancel, Suspend, Resume,
// Reload): it carries ALLOW_INTERACTIVE_AUTHORIZATION unless
// --no-ask-password, and on a terminal a polkit agent runs for as long as the
// call, as systemctl does.
// `timeout` (nullopt: the bus's default, or kInteractiveCallTimeout when
// polkit may ask) for a method whose work itself takes long (Verify).
template <typename... Args>
sdbus::MethodReply callManagingWithin(ManagerProxy& manager, const RemoteOptions& options,
                                      std::optional<std::chrono::microseconds> timeout,
                                      const char* method, const Args&... args) {
    return onBus([&] {
        sdbus::IProxy& proxy = manager.getProxy();
        sdbus::MethodCall call = dbus::createMethodCall(proxy, kManagerInterface, method);
        (void)(call << ... << args);
        if (!options.askPassword)
            return timeout ? proxy.callMethod(call, *timeout) : proxy.callMethod(call);
        dbus::allowInteractiveAuthorization(call);
        const PolkitAgent agent{true};
        return proxy.callMethod(call, timeout.value_or(kInteractiveCallTimeout));
    });
}

template <typename... Args>
sdbus::MethodReply callManaging(ManagerProxy& manager, const RemoteOptions& options,
                                const char* method, const Args&... args) {
    return callManagingWithin(manager, options, std::nullopt, method, args...);
}

std::map<std::string, sdbus::Variant> trimOptions(const TrimRequest& request) {
    std::map<std::string, sdbus::Variant> options;
    if (request.dryRun)
        options["dry_run"] = sdbus::Variant(true);
    if (request.minimumExtent)
        options["minimum_extent"] = sdbus::Variant(*request.minimumExtent);
    if (request.rateLimit)
        options["rate_limit"] = sdbus::Variant(*request.rateLimit);
    if (request.chunkSize)
        options["chunk_size"] = sdbus::Variant(*request.chunkSize);
    return options;
}

} // namespace

Error errorFromBus(const sdbus::Error& error) {
    const std::string& name = error.getName();
    if (auto code = dbus::errorCodeFromName(name)) {
        // The bus's own policy refusals share the AccessDenied name; their
        // message is for developers.
        if (*code == ErrorCode::AccessDenied && error.getMessage().starts_with("Rejected send"))
            return Error(*code, fmt::format("the system bus's policy does not let you call "
                                            "thintrimd ({})",
                                            error.getMessage()));
        // thintrimd's errors are sentences already.
        return Error(*code, error.getMessage());
    }
    if (name == "org.freedesktop.DBus.Error.ServiceUnknown" ||
        name == "org.freedesktop.DBus.Error.NameHasNoOwner" ||
        name == "org.freedesktop.systemd1.NoSuchUnit")
        return Error(ErrorCode::System,
                     "thintrimd is not running; start it with `systemctl start thintrimd`");
    if (name == "org.freedesktop.DBus.Error.NoReply" ||
        name == "org.freedesktop.DBus.Error.Timeout" ||
        name == "org.freedesktop.DBus.Error.TimedOut")
        return Error(ErrorCode::System, "thintrimd did not answer in time");
    if (name == "org.freedesktop.DBus.Error.Disconnected" ||
        name == "org.freedesktop.DBus.Error.NoServer" ||
        name == "org.freedesktop.DBus.Error.FileNotFound" ||
        name == "org.freedesktop.DBus.Error.NotSupported" || name.starts_with("System.Error."))
        return Error(
            ErrorCode::System,
            fmt::format("cannot reach the system bus ({}); is dbus running?", error.getMessage()));
    if (name == "org.freedesktop.DBus.Error.UnknownMethod" ||
        name == "org.freedesktop.DBus.Error.UnknownObject" ||
        name == "org.freedesktop.DBus.Error.UnknownInterface" ||
        name == "org.freedesktop.DBus.Error.UnknownProperty")
        return Error(ErrorCode::System,
                     fmt::format("thintrimd does not understand this request ({}); is it the "
                                 "same version as this program?",
                                 error.getMessage()));
    return Error(
        ErrorCode::System,
        fmt::format("thintrimd: {}", error.getMessage().empty() ? name : error.getMessage()));
}

bool daemonReachable() {
    try {
        auto bus = dbus::connectSystemBus();
        auto busDaemon = dbus::createProxy(*bus, "org.freedesktop.DBus", "/org/freedesktop/DBus");
        // Only a daemon that already runs: activating it (StartServiceByName,
        // or any call to its name) would start one an administrator stopped
        // or disabled, and it would then run its schedule.
        bool running = false;
        busDaemon->callMethod("NameHasOwner")
            .onInterface("org.freedesktop.DBus")
            .withArguments(std::string(dbus::kBusName))
            .storeResultsTo(running);
        return running;
    } catch (const sdbus::Error&) {
        return false;
    }
}

int status(const RemoteOptions& options) {
    auto bus = connect();
    ManagerProxy manager{*bus};
    const Properties daemon = readManager(manager);
    const std::vector<Properties> filesystems = readFilesystems(*bus);
    if (options.json) {
        nlohmann::json list = nlohmann::json::array();
        for (const Properties& fs : filesystems)
            list.push_back(listEntryJson(filesystemJson(fs)));
        printJson({
            {"source", "daemon"},
            {"version", property<std::string>(daemon, "Version")},
            {"state", property<std::string>(daemon, "State")},
            {"current_job", property<std::uint64_t>(daemon, "CurrentJob")},
            {"current_mount_point", property<std::string>(daemon, "CurrentMountPoint")},
            {"progress", property<double>(daemon, "Progress")},
            {"pacing_state", property<std::string>(daemon, "PacingState")},
            {"next_scheduled_trim", property<std::uint64_t>(daemon, "NextScheduledTrim")},
            {"last_run_started", property<std::uint64_t>(daemon, "LastRunStarted")},
            {"last_run_finished", property<std::uint64_t>(daemon, "LastRunFinished")},
            {"last_run_trimmed_bytes", property<std::uint64_t>(daemon, "LastRunTrimmedBytes")},
            {"last_run_result", property<std::string>(daemon, "LastRunResult", "never")},
            {"total_trimmed_bytes", property<std::uint64_t>(daemon, "TotalTrimmedBytes")},
            {"last_run_reached_disk_bytes",
             property<std::uint64_t>(daemon, "LastRunReachedDiskBytes")},
            {"total_reached_disk_bytes", property<std::uint64_t>(daemon, "TotalReachedDiskBytes")},
            {"interval_us", property<std::uint64_t>(daemon, "Interval")},
            {"rate_limit", property<std::uint64_t>(daemon, "RateLimit")},
            {"chunk_size", property<std::uint64_t>(daemon, "ChunkSize")},
            {"filesystems", list},
        });
        return kExitOk;
    }

    const Microseconds now = realtimeNow();
    std::string state = property<std::string>(daemon, "State");
    if (state == "trimming")
        state = fmt::format("trimming {} ({:.0f}%, job {})",
                            property<std::string>(daemon, "CurrentMountPoint"),
                            property<double>(daemon, "Progress") * 100,
                            property<std::uint64_t>(daemon, "CurrentJob"));
    if (const std::string pacing = property<std::string>(daemon, "PacingState"); !pacing.empty())
        state += "; " + pacing;
    const std::string lastResult = property<std::string>(daemon, "LastRunResult", "never");
    const std::string lastRun =
        lastResult == "never"
            ? std::string("never")
            : fmt::format(
                  "{}, {} trimmed, {} reached the disks, {}", lastResult,
                  sizeText(property<std::uint64_t>(daemon, "LastRunTrimmedBytes"), options.render),
                  sizeText(property<std::uint64_t>(daemon, "LastRunReachedDiskBytes"),
                           options.render),
                  whenText(property<std::uint64_t>(daemon, "LastRunFinished"), now));
    const std::uint64_t rate = property<std::uint64_t>(daemon, "RateLimit");
    const std::vector<std::pair<const char*, std::string>> lines{
        {"State", state},
        {"Next trim", whenText(property<std::uint64_t>(daemon, "NextScheduledTrim"), now)},
        {"Last run", lastRun},
        {"Total trimmed",
         sizeText(property<std::uint64_t>(daemon, "TotalTrimmedBytes"), options.render)},
        {"Interval", formatDuration(asTime(property<std::uint64_t>(daemon, "Interval")))},
        {"Rate limit", rate == 0 ? std::string("none") : sizeText(rate, options.render) + "/s"},
    };
    // Labels right-aligned on the colon, as timedatectl prints them.
    for (const auto& [label, value] : lines)
        fmt::print("{:>14}: {}\n", label, value);
    fmt::print("\n");
    if (filesystems.empty()) {
        fmt::print("No filesystem is managed.\n");
        return kExitOk;
    }
    std::vector<std::vector<std::string>> rows{{"MOUNT", "TYPE", "DISC-MAX", "ELIGIBLE",
                                                "LAST TRIM", "TRIMMED", "AT DISK", "VERIFY",
                                                "FREED SINCE", "NEXT TRIM"}};
    std::vector<std::string> notes;
    for (const Properties& fs : filesystems) {
        rows.push_back({property<std::string>(fs, "MountPoint"),
                        property<std::string>(fs, "FsType"),
                        sizeText(property<std::uint64_t>(fs, "DiscardMaxBytes"), options.render),
                        eligibleText(fs), lastTrimText(fs, now),
                        sizeText(property<std::uint64_t>(fs, "LastTrimmedBytes"), options.render),
                        reachedText(fs, options.render),
                        property<std::string>(fs, "LastVerifyResult", "never"),
                        sizeText(property<std::uint64_t>(fs, "FreedSinceLastTrim"), options.render),
                        whenText(property<std::uint64_t>(fs, "NextScheduledTrim"), now)});
        for (std::string& note : filesystemNotes(fs))
            notes.push_back(std::move(note));
    }
    printColumns(stdout, rows);
    // Why a scheduled trim was put off (busy storage, outside Window=).
    for (const Properties& fs : filesystems) {
        const std::string message = property<std::string>(fs, "LastTrimMessage");
        if (property<std::string>(fs, "LastTrimResult") == "skipped" &&
            message.starts_with("deferred: "))
            fmt::print("{}: {}\n", property<std::string>(fs, "MountPoint"), message);
    }
    // Named because Cancel, Suspend, the rate limit and the saved position
    // act on these only before or after the whole filesystem.
    std::vector<std::string> oneCall;
    for (const Properties& fs : filesystems)
        if (const auto type = property<std::string>(fs, "FsType"); !isChunkedType(type))
            oneCall.push_back(
                fmt::format("{} ({})", property<std::string>(fs, "MountPoint"), type));
    if (!oneCall.empty())
        notes.push_back(fmt::format("Trimmed in one call, not paced or stopped midway: {}",
                                    fmt::join(oneCall, ", ")));
    if (!notes.empty())
        fmt::print("\n");
    for (const std::string& note : notes)
        fmt::print("{}\n", note);
    fmt::print("\nTRIMMED is what FITRIM reported; AT DISK the discards the virtual disks "
               "received, an upper bound of what the host frees; FREED SINCE the free space "
               "gained since the last trim, roughly what the next trim hands back.\n");
    return kExitOk;
}

int list(const RemoteOptions& options) {
    auto bus = connect();
    const std::vector<Properties> filesystems = readFilesystems(*bus);
    if (options.json) {
        nlohmann::json list = nlohmann::json::array();
        for (const Properties& fs : filesystems)
            list.push_back(listEntryJson(filesystemJson(fs)));
        printJson({{"source", "daemon"}, {"filesystems", list}});
        return kExitOk;
    }
    if (filesystems.empty()) {
        fmt::print("No filesystem to trim was found.\n");
        return kExitOk;
    }
    const Microseconds now = realtimeNow();
    std::vector<std::vector<std::string>> rows{{"MOUNT", "TYPE", "SOURCE", "SIZE", "DISC-MAX",
                                                "LAST TRIM", "TRIMMED", "TOTAL", "ELIGIBLE"}};
    for (const Properties& fs : filesystems)
        rows.push_back({property<std::string>(fs, "MountPoint"),
                        property<std::string>(fs, "FsType"), property<std::string>(fs, "Source"),
                        sizeText(property<std::uint64_t>(fs, "Size"), options.render),
                        sizeText(property<std::uint64_t>(fs, "DiscardMaxBytes"), options.render),
                        lastTrimText(fs, now),
                        sizeText(property<std::uint64_t>(fs, "LastTrimmedBytes"), options.render),
                        sizeText(property<std::uint64_t>(fs, "TotalTrimmedBytes"), options.render),
                        eligibleText(fs)});
    printColumns(stdout, rows);
    return kExitOk;
}

int trim(const RemoteOptions& options, const TrimRequest& request) {
    auto bus = connect();
    // Subscribed before the call, so no signal of the job can be missed.
    ManagerProxy manager{*bus};
    const bool showBar = !options.json && !request.noWait && ::isatty(STDOUT_FILENO) != 0;

    std::uint64_t job = 0;
    std::optional<std::string> finishedResult;
    bool suspendedNoted = false;
    std::optional<ProgressBar> bar;
    std::string barMountPoint;
    std::uint64_t currentJob = 0;
    std::uint64_t currentTrimmed = 0;
    TrimResults results(options.json, !request.mountPoints.empty());

    manager.filesystemTrimmed = [&](std::uint64_t id, const std::string& mountPoint,
                                    const TrimReport& report) {
        if (id != job)
            return;
        bar.reset();
        results.add(mountPoint, report);
    };
    manager.jobFinished = [&](std::uint64_t id, const std::string& result, std::uint64_t) {
        if (id == job)
            finishedResult = result;
    };
    manager.propertiesChanged = [&](const Properties& changed) {
        if (changed.contains("State")) {
            const bool suspended = property<std::string>(changed, "State") == "suspended";
            if (suspended && !suspendedNoted && !options.json) {
                bar.reset();
                fmt::print(stderr,
                           "thintrimd is suspended; job {} continues after "
                           "`thintrim resume`\n",
                           job);
            }
            suspendedNoted = suspended;
        }
        // Signals carry only what changed: keep the rest from earlier ones.
        currentJob = property<std::uint64_t>(changed, "CurrentJob", currentJob);
        currentTrimmed = property<std::uint64_t>(changed, "CurrentTrimmedBytes", currentTrimmed);
        if (changed.contains("CurrentMountPoint")) {
            barMountPoint = property<std::string>(changed, "CurrentMountPoint");
            bar.reset();
        }
        if (!showBar || currentJob != job || barMountPoint.empty() || !changed.contains("Progress"))
            return;
        if (!bar)
            bar.emplace(stdout, barMountPoint);
        constexpr std::uint64_t kScale = 1'000'000;
        const double fraction = property<double>(changed, "Progress");
        bar->update({static_cast<std::uint64_t>(fraction * kScale), kScale, currentTrimmed});
    };

    callManaging(manager, options, "Trim", request.mountPoints, trimOptions(request)) >> job;
    if (request.noWait) {
        if (options.json)
            printJson({{"job", job}});
        else
            fmt::print("Queued job {}.\n", job);
        return kExitOk;
    }
    if (!waitUntil(*bus, [&] { return finishedResult.has_value(); })) {
        bar.reset();
        fmt::print(stderr, "\nJob {} goes on in thintrimd; `thintrim cancel {}` stops it.\n", job,
                   job);
        return kExitInterrupted;
    }
    if (options.json)
        printJson({{"job", job}, {"result", *finishedResult}, {"results", results.json()}});
    if (*finishedResult == "cancelled")
        return kExitError;
    return results.exitCode();
}

int cancel(const RemoteOptions& options, std::uint64_t job) {
    auto bus = connect();
    ManagerProxy manager{*bus};
    (void)callManaging(manager, options, "Cancel", job);
    return kExitOk;
}

int suspend(const RemoteOptions& options) {
    auto bus = connect();
    ManagerProxy manager{*bus};
    (void)callManaging(manager, options, "Suspend");
    return kExitOk;
}

int resume(const RemoteOptions& options) {
    auto bus = connect();
    ManagerProxy manager{*bus};
    (void)callManaging(manager, options, "Resume");
    return kExitOk;
}

int reload(const RemoteOptions& options) {
    auto bus = connect();
    ManagerProxy manager{*bus};
    (void)callManaging(manager, options, "Reload");
    return kExitOk;
}

std::vector<VerifyResult> verify(const RemoteOptions& options,
                                 const std::vector<std::string>& mountPoints) {
    auto bus = connect();
    ManagerProxy manager{*bus};
    std::vector<sdbus::Struct<std::string, std::string, std::string, std::uint64_t>> answers;
    // Each filesystem writes and reads a probe of a few MiB: longer than the
    // bus's default 25 s on a slow disk.
    sdbus::MethodReply reply =
        callManagingWithin(manager, options, std::chrono::minutes(10), "Verify", mountPoints);
    onBus([&] { reply >> answers; });
    std::vector<VerifyResult> results;
    for (const auto& answer : answers) {
        VerifyResult result;
        result.mountPoint = std::get<0>(answer);
        result.report.verdict =
            parseVerifyVerdict(std::get<1>(answer)).value_or(VerifyVerdict::Inconclusive);
        result.report.message = std::get<2>(answer);
        if (std::get<3>(answer) != dbus::kUnknownBytes)
            result.report.reachedDiskBytes = std::get<3>(answer);
        results.push_back(std::move(result));
    }
    return results;
}

std::vector<Finding> diagnose() {
    auto bus = connect();
    ManagerProxy manager{*bus};
    std::vector<Finding> findings;
    for (const auto& finding : onBus([&] { return manager.Diagnose(); }))
        findings.push_back({parseSeverity(std::get<0>(finding)).value_or(Severity::Error),
                            std::get<1>(finding), std::get<2>(finding), std::get<3>(finding)});
    return findings;
}

} // namespace thintrim::cli::remote
