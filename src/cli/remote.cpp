// SPDX-License-Identifier: GPL-2.0-or-later
#include "remote.h"

#include "base/unique_fd.h"
#include "base/units.h"
#include "bus_names.h"
#include "discovery/btrfs_discard.h"
#include "engine/engine.h"
#include "interactive_authorization.h"
#include "polkit_agent.h"
#include "properties.h"
#include "sdbus_compat.h"
#include "state/state.h"
#include "thintrim1_proxy.h"
#include "trim/receipts.h"
#include "trim/trim.h"

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

namespace manager = schema::manager;
namespace filesystem = schema::filesystem;
constexpr std::string_view kManagerInterface = schema::ManagerInterface::name;
constexpr std::string_view kFilesystemInterface = schema::FilesystemInterface::name;

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
    std::function<void(std::uint64_t, JobResult, std::uint64_t)> jobFinished;
    std::function<void(const ManagerView&)> propertiesChanged;

    // What a handler threw (a name or type the schema does not know), for
    // the waiting loop to throw: sdbus-c++ does not carry it out of a
    // handler.
    void rethrowHandlerFailure() const {
        if (handlerFailure_)
            std::rethrow_exception(handlerFailure_);
    }

private:
    template <typename Handler>
    void guardHandler(Handler&& handler) {
        try {
            handler();
        } catch (...) {
            if (!handlerFailure_)
                handlerFailure_ = std::current_exception();
        }
    }

    // The job id from Trim's reply is all `trim` needs to know it started.
    void onJobStarted(const std::uint64_t& /*job*/,
                      const std::vector<std::string>& /*mountPoints*/) override {}
    void onFilesystemTrimmed(const std::uint64_t& job, const std::string& mountPoint,
                             const std::uint64_t& trimmedBytes, const std::uint64_t& duration,
                             const std::string& result, const std::string& message) override;
    void onJobFinished(const std::uint64_t& job, const std::string& result,
                       const std::uint64_t& trimmedBytes) override {
        if (jobFinished)
            guardHandler([&] { jobFinished(job, kJobResults.parse(result), trimmedBytes); });
    }
    void onPropertiesChanged(const dbus::InterfaceName& interfaceName,
                             const dbus::ChangedProperties& changed,
                             const dbus::InvalidatedProperties& /*invalidated*/) override {
        if (interfaceName == kManagerInterface && propertiesChanged)
            guardHandler([&] { propertiesChanged(ManagerView(dbus::plainKeys(changed))); });
    }

    std::exception_ptr handlerFailure_;
};

void ManagerProxy::onFilesystemTrimmed(const std::uint64_t& job, const std::string& mountPoint,
                                       const std::uint64_t& trimmedBytes,
                                       const std::uint64_t& duration, const std::string& result,
                                       const std::string& message) {
    if (!filesystemTrimmed)
        return;
    guardHandler([&] {
        TrimReport report;
        report.outcome = kTrimOutcomes.parse(result);
        report.trimmedBytes = trimmedBytes;
        report.duration = Microseconds(static_cast<Microseconds::rep>(duration));
        report.message = message;
        filesystemTrimmed(job, mountPoint, report);
    });
}

Microseconds asTime(std::uint64_t value) {
    return Microseconds(static_cast<Microseconds::rep>(value));
}

std::string whenText(std::uint64_t at, Microseconds now) {
    return at == 0 ? std::string("-") : formatRelative(asTime(at), now);
}

// Every managed filesystem's properties, in mount point order (one call).
std::vector<FilesystemView> readFilesystems(sdbus::IConnection& bus) {
    auto proxy = dbus::createProxy(bus, dbus::kBusName, dbus::kManagerPath);
    std::map<sdbus::ObjectPath, std::map<std::string, dbus::PropertyMap>> objects;
    onBus([&] {
        proxy->callMethod("GetManagedObjects")
            .onInterface("org.freedesktop.DBus.ObjectManager")
            .storeResultsTo(objects);
    });
    std::map<std::string, FilesystemView> byMountPoint;
    for (auto& [path, interfaces] : objects) {
        auto found = interfaces.find(std::string(kFilesystemInterface));
        if (found == interfaces.end())
            continue;
        FilesystemView fs(std::move(found->second));
        byMountPoint[fs.get<filesystem::MountPoint>()] = std::move(fs);
    }
    std::vector<FilesystemView> filesystems;
    for (auto& [mountPoint, properties] : byMountPoint)
        filesystems.push_back(std::move(properties));
    return filesystems;
}

ManagerView readManager(ManagerProxy& manager) {
    return ManagerView(
        onBus([&] { return dbus::plainKeys(manager.GetAll(kManagerInterface.data())); }));
}

// The properties of the filesystem object at `path`.
FilesystemView readFilesystem(sdbus::IConnection& bus, const std::string& path) {
    auto proxy = dbus::createProxy(bus, dbus::kBusName, path);
    std::map<std::string, sdbus::Variant> properties;
    onBus([&] {
        proxy->callMethod("GetAll")
            .onInterface("org.freedesktop.DBus.Properties")
            .withArguments(std::string(kFilesystemInterface))
            .storeResultsTo(properties);
    });
    return FilesystemView(std::move(properties));
}

// LastTrimResult as an outcome; nullopt for "never".
std::optional<TrimOutcome> lastTrimOutcome(const FilesystemView& fs) {
    const std::string name = fs.get<filesystem::LastTrimResult>();
    if (name == kNeverName)
        return std::nullopt;
    return kTrimOutcomes.parse(name);
}

// LastVerifyResult as a verdict; nullopt for "never".
std::optional<VerifyVerdict> lastVerifyVerdict(const FilesystemView& fs) {
    const std::string name = fs.get<filesystem::LastVerifyResult>();
    if (name == kNeverName)
        return std::nullopt;
    return kVerifyVerdicts.parse(name);
}

std::string eligibleText(const FilesystemView& fs) {
    return fs.get<filesystem::Eligible>() ? "yes" : "no: " + fs.get<filesystem::Reason>();
}

std::string lastTrimText(const FilesystemView& fs, Microseconds now) {
    const std::optional<TrimOutcome> outcome = lastTrimOutcome(fs);
    if (!outcome)
        return std::string(kNeverName);
    const std::string when = whenText(fs.get<filesystem::LastTrimFinished>(), now);
    return *outcome == TrimOutcome::Success
               ? when
               : fmt::format("{} ({})", when, trimOutcomeName(*outcome));
}

nlohmann::json filesystemJson(const FilesystemView& fs) {
    nlohmann::json json = propertiesJson(fs, std::type_identity<schema::FilesystemPropertyList>{});
    json["managed"] = true;
    return json;
}

// The receipts column: what reached the disks, "-" when unknown or never.
std::string reachedText(const FilesystemView& fs, const RenderOptions& render) {
    const std::optional<std::uint64_t> bytes = fs.knownBytes<filesystem::LastReachedDiskBytes>();
    if (!bytes || !lastTrimOutcome(fs))
        return "-";
    return sizeText(*bytes, render);
}

// What status says under the table: swallowed discards, dropped verdicts,
// btrfs discard=async.
std::vector<std::string> filesystemNotes(const FilesystemView& fs) {
    std::vector<std::string> notes;
    const std::string mountPoint = fs.get<filesystem::MountPoint>();
    const std::uint64_t trimmed = fs.get<filesystem::LastTrimmedBytes>();
    if (lastTrimOutcome(fs) == TrimOutcome::Success &&
        discardsSwallowed(trimmed, fs.knownBytes<filesystem::LastReachedDiskBytes>()))
        notes.push_back(fmt::format("{}: {}", mountPoint, swallowedSentence(trimmed)));
    if (lastVerifyVerdict(fs) == VerifyVerdict::Dropped)
        notes.push_back(fmt::format("{}: verify says discards are dropped: {}", mountPoint,
                                    fs.get<filesystem::LastVerifyMessage>()));
    if (fs.get<filesystem::AsyncDiscard>())
        notes.push_back(fmt::format(
            "{}: {}", mountPoint, btrfsAsyncSentence({fs.get<filesystem::DiscardBacklogBytes>()})));
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
            throw Error(ErrorCode::Failed, "thintrimd stopped before the job finished; it "
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

// The receipt of a trim the daemon just reported: FilesystemTrimmed carries
// none, the filesystem's LastReachedDiskBytes has it once the daemon recorded
// the trim (a dry run it does not record; a filesystem skipped before it
// started has none). nullopt when unknown, or when the filesystem is gone.
std::optional<std::uint64_t> receiptOf(sdbus::IConnection& bus, const std::string& mountPoint,
                                       const TrimReport& report) {
    if (report.outcome == TrimOutcome::Skipped)
        return std::nullopt;
    auto manager = dbus::createProxy(bus, dbus::kBusName, dbus::kManagerPath);
    sdbus::ObjectPath path;
    try {
        manager->callMethod("GetFilesystem")
            .onInterface(kManagerInterface.data())
            .withArguments(mountPoint)
            .storeResultsTo(path);
    } catch (const sdbus::Error&) {
        return std::nullopt; // unmounted since
    }
    const FilesystemView fs = readFilesystem(bus, path);
    if (lastTrimOutcome(fs) != report.outcome)
        return std::nullopt;
    return fs.knownBytes<filesystem::LastReachedDiskBytes>();
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
        return Error(ErrorCode::Failed,
                     "thintrimd is not running; start it with `systemctl start thintrimd`");
    if (name == "org.freedesktop.DBus.Error.NoReply" ||
        name == "org.freedesktop.DBus.Error.Timeout" ||
        name == "org.freedesktop.DBus.Error.TimedOut")
        return Error(ErrorCode::Failed, "thintrimd did not answer in time");
    if (name == "org.freedesktop.DBus.Error.Disconnected" ||
        name == "org.freedesktop.DBus.Error.NoServer" ||
        name == "org.freedesktop.DBus.Error.FileNotFound" ||
        name == "org.freedesktop.DBus.Error.NotSupported" || name.starts_with("System.Error."))
        return Error(
            ErrorCode::Failed,
            fmt::format("cannot reach the system bus ({}); is dbus running?", error.getMessage()));
    if (name == "org.freedesktop.DBus.Error.UnknownMethod" ||
        name == "org.freedesktop.DBus.Error.UnknownObject" ||
        name == "org.freedesktop.DBus.Error.UnknownInterface" ||
        name == "org.freedesktop.DBus.Error.UnknownProperty")
        return Error(ErrorCode::Failed,
                     fmt::format("thintrimd does not understand this request ({}); is it the "
                                 "same version as this program?",
                                 error.getMessage()));
    return Error(
        ErrorCode::Failed,
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
    const ManagerView daemon = readManager(manager);
    const std::vector<FilesystemView> filesystems = readFilesystems(*bus);
    if (options.json) {
        nlohmann::json list = nlohmann::json::array();
        for (const FilesystemView& fs : filesystems)
            list.push_back(listEntryJson(filesystemJson(fs)));
        nlohmann::json json =
            propertiesJson(daemon, std::type_identity<schema::ManagerPropertyList>{});
        json["source"] = "daemon";
        json["filesystems"] = std::move(list);
        printJson(json);
        return kExitOk;
    }

    const Microseconds now = realtimeNow();
    std::string state = daemon.get<manager::State>();
    if (kEngineStates.parse(state) == EngineState::Trimming)
        state =
            fmt::format("trimming {} ({:.0f}%, job {})", daemon.get<manager::CurrentMountPoint>(),
                        daemon.get<manager::Progress>() * 100, daemon.get<manager::CurrentJob>());
    if (const std::string pacing = daemon.get<manager::PacingState>(); !pacing.empty())
        state += "; " + pacing;
    const std::string lastResult = daemon.get<manager::LastRunResult>();
    const std::string lastRun =
        lastResult == kNeverName
            ? std::string(kNeverName)
            : fmt::format("{}, {} trimmed, {} reached the disks, {}",
                          jobResultName(kJobResults.parse(lastResult)),
                          sizeText(daemon.get<manager::LastRunTrimmedBytes>(), options.render),
                          sizeText(daemon.get<manager::LastRunReachedDiskBytes>(), options.render),
                          whenText(daemon.get<manager::LastRunFinished>(), now));
    const std::uint64_t rate = daemon.get<manager::RateLimit>();
    const std::vector<std::pair<const char*, std::string>> lines{
        {"State", state},
        {"Next trim", whenText(daemon.get<manager::NextScheduledTrim>(), now)},
        {"Last run", lastRun},
        {"Total trimmed", sizeText(daemon.get<manager::TotalTrimmedBytes>(), options.render)},
        {"Interval", formatDuration(asTime(daemon.get<manager::Interval>()))},
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
    for (const FilesystemView& fs : filesystems) {
        rows.push_back({fs.get<filesystem::MountPoint>(), fs.get<filesystem::FsType>(),
                        sizeText(fs.get<filesystem::DiscardMaxBytes>(), options.render),
                        eligibleText(fs), lastTrimText(fs, now),
                        sizeText(fs.get<filesystem::LastTrimmedBytes>(), options.render),
                        reachedText(fs, options.render), fs.get<filesystem::LastVerifyResult>(),
                        sizeText(fs.get<filesystem::FreedSinceLastTrim>(), options.render),
                        whenText(fs.get<filesystem::NextScheduledTrim>(), now)});
        for (std::string& note : filesystemNotes(fs))
            notes.push_back(std::move(note));
    }
    printColumns(stdout, rows);
    // Why a scheduled trim was put off (busy storage, outside Window=).
    for (const FilesystemView& fs : filesystems) {
        const std::string message = fs.get<filesystem::LastTrimMessage>();
        if (lastTrimOutcome(fs) == TrimOutcome::Skipped && message.starts_with("deferred: "))
            fmt::print("{}: {}\n", fs.get<filesystem::MountPoint>(), message);
    }
    // Named because Cancel, Suspend, the rate limit and the saved position
    // act on these only before or after the whole filesystem.
    std::vector<std::string> oneCall;
    for (const FilesystemView& fs : filesystems)
        if (const auto type = fs.get<filesystem::FsType>(); !isChunkedType(type))
            oneCall.push_back(fmt::format("{} ({})", fs.get<filesystem::MountPoint>(), type));
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
    const std::vector<FilesystemView> filesystems = readFilesystems(*bus);
    if (options.json) {
        nlohmann::json list = nlohmann::json::array();
        for (const FilesystemView& fs : filesystems)
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
    for (const FilesystemView& fs : filesystems)
        rows.push_back(
            {fs.get<filesystem::MountPoint>(), fs.get<filesystem::FsType>(),
             fs.get<filesystem::Source>(), sizeText(fs.get<filesystem::Size>(), options.render),
             sizeText(fs.get<filesystem::DiscardMaxBytes>(), options.render), lastTrimText(fs, now),
             sizeText(fs.get<filesystem::LastTrimmedBytes>(), options.render),
             sizeText(fs.get<filesystem::TotalTrimmedBytes>(), options.render), eligibleText(fs)});
    printColumns(stdout, rows);
    return kExitOk;
}

int trim(const RemoteOptions& options, const TrimRequest& request) {
    auto bus = connect();
    // Subscribed before the call, so no signal of the job can be missed.
    ManagerProxy manager{*bus};
    const bool showBar = !options.json && !request.noWait && ::isatty(STDOUT_FILENO) != 0;

    std::uint64_t job = 0;
    std::optional<JobResult> finishedResult;
    bool suspendedNoted = false;
    std::optional<ProgressBar> bar;
    std::string barMountPoint;
    std::uint64_t currentJob = 0;
    std::uint64_t currentTrimmed = 0;
    TrimResults results(options.json, !request.mountPoints.empty());

    // With --json the results are printed at the end, with their receipts.
    std::vector<std::pair<std::string, TrimReport>> reports;
    manager.filesystemTrimmed = [&](std::uint64_t id, const std::string& mountPoint,
                                    const TrimReport& report) {
        if (id != job)
            return;
        bar.reset();
        if (options.json)
            reports.emplace_back(mountPoint, report);
        else
            results.add(mountPoint, report);
    };
    manager.jobFinished = [&](std::uint64_t id, JobResult result, std::uint64_t) {
        if (id == job)
            finishedResult = result;
    };
    manager.propertiesChanged = [&](const ManagerView& changed) {
        if (const auto state = changed.find<manager::State>()) {
            const bool suspended = kEngineStates.parse(*state) == EngineState::Suspended;
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
        currentJob = changed.find<manager::CurrentJob>().value_or(currentJob);
        currentTrimmed = changed.find<manager::CurrentTrimmedBytes>().value_or(currentTrimmed);
        if (const auto mountPoint = changed.find<manager::CurrentMountPoint>()) {
            barMountPoint = *mountPoint;
            bar.reset();
        }
        const std::optional<double> progress = changed.find<manager::Progress>();
        if (!showBar || currentJob != job || barMountPoint.empty() || !progress)
            return;
        if (!bar)
            bar.emplace(stdout, barMountPoint);
        constexpr std::uint64_t kScale = 1'000'000;
        const double fraction = *progress;
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
    if (!waitUntil(*bus, [&] {
            manager.rethrowHandlerFailure();
            return finishedResult.has_value();
        })) {
        bar.reset();
        fmt::print(stderr, "\nJob {} goes on in thintrimd; `thintrim cancel {}` stops it.\n", job,
                   job);
        return kExitInterrupted;
    }
    if (options.json) {
        for (auto& [mountPoint, report] : reports) {
            if (!request.dryRun)
                report.reachedDiskBytes = receiptOf(*bus, mountPoint, report);
            results.add(mountPoint, report);
        }
        printJson({{"job", job},
                   {"result", jobResultName(*finishedResult)},
                   {"results", results.json()}});
    }
    if (*finishedResult == JobResult::Cancelled)
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
        result.report.verdict = kVerifyVerdicts.parse(std::get<1>(answer));
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
        findings.push_back({kSeverities.parse(std::get<0>(finding)), std::get<1>(finding),
                            std::get<2>(finding), std::get<3>(finding)});
    return findings;
}

} // namespace thintrim::cli::remote
