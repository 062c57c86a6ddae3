// SPDX-License-Identifier: GPL-2.0-or-later
// thintrimd: the thintrim daemon. Everything that can go wrong before the
// loop runs (options, configuration, bus) ends here with one sentence on
// stderr and a non-zero exit, so systemd shows why it did not start. Once
// the loop runs, its own boundary (event_loop.h) logs a failure and stops;
// what still escapes is reported as a stop, not as a failure to start.
#include "base/error.h"
#include "build_config.h"
#include "config/config.h"
#include "daemon.h"
#include "log.h"
#include "sdbus_compat.h"

#include <cstdio>
#include <cstdlib>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace thintrim::daemon {

namespace {

// As thintrimd(8) documents them; the unit's RestartPreventExitStatus=78
// keeps systemd from restarting into the same invalid configuration.
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInvalidConfig = 78; // EX_CONFIG

std::filesystem::path defaultStateDir() {
    // systemd's StateDirectory= sets it; it may list several, colon-separated.
    if (const char* fromSystemd = std::getenv("STATE_DIRECTORY"); fromSystemd && *fromSystemd) {
        std::string_view dirs{fromSystemd};
        return std::filesystem::path(dirs.substr(0, dirs.find(':')));
    }
    return THINTRIM_STATEDIR;
}

int run(int argc, char** argv) {
    CLI::App app{"thintrimd: trims thin-provisioned disks on a schedule and on request over D-Bus"};
    app.set_version_flag("--version", std::string(THINTRIM_VERSION));
    std::string configFile;
    std::string stateDir = defaultStateDir();
    std::string logLevel = "info";
    DaemonOptions options;
    app.add_option("--config", configFile,
                   "Read this file (and drop-ins from FILE.d/) instead of " THINTRIM_SYSCONFDIR
                   "/thintrim.conf");
    app.add_option("--state-dir", stateDir, "Keep history here")->capture_default_str();
    app.add_option("--log-level", logLevel, "error, warning, notice, info or debug")
        ->capture_default_str();
    for (const SystemPathOption& path : kSystemPathOptions)
        app.add_option(path.flag, options.systemPaths.*path.member, path.help)->group("Testing");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? EXIT_SUCCESS : kExitUsage;
    }

    initLogging(parseLogLevel(logLevel));
    options.configPaths =
        configFile.empty() ? ConfigPaths::installed() : ConfigPaths::explicitFile(configFile);
    options.stateDir = stateDir;

    Config config = loadConfig(options.configPaths);
    std::filesystem::create_directories(options.stateDir);
    std::unique_ptr<sdbus::IConnection> bus = dbus::connectSystemBus();
    Daemon daemon{std::move(options), std::move(config), *bus};
    try {
        return daemon.run();
    } catch (const std::exception& e) {
        logMessage(LogLevel::Error, fmt::format("stopped by an unexpected error: {}", e.what()));
        return kExitFailure;
    }
}

} // namespace

} // namespace thintrim::daemon

int main(int argc, char** argv) {
    using namespace thintrim::daemon;
    try {
        return run(argc, argv);
    } catch (const thintrim::Error& e) {
        logMessage(LogLevel::Error, fmt::format("cannot start: {}", e.what()));
        switch (e.code()) {
        case thintrim::ErrorCode::InvalidConfig:
            return kExitInvalidConfig;
        case thintrim::ErrorCode::InvalidArgument:
            return kExitUsage;
        default:
            return kExitFailure;
        }
    } catch (const sdbus::Error& e) {
        logMessage(LogLevel::Error,
                   fmt::format("cannot start: D-Bus: {} ({})", e.getMessage(), e.getName()));
    } catch (const std::exception& e) {
        logMessage(LogLevel::Error, fmt::format("cannot start: {}", e.what()));
    }
    return kExitFailure;
}
