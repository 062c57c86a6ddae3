// SPDX-License-Identifier: GPL-2.0-or-later
// By path: a plain "config.h" would find meson's generated build-root header
// first (THINTRIM_VERSION...), which precedes src/core on the include path.
#include "base/error.h"
#include "catch.h"
#include "config/config.h"
#include "fixture_paths.h"
#include "temp_dir.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <stdlib.h>
#include <unistd.h>

using namespace thintrim;
using namespace std::chrono_literals;
using thintrim::test::Contains;

namespace {

constexpr std::uint64_t GiB = 1ULL << 30;
constexpr std::uint64_t MiB = 1ULL << 20;

void writeFile(const std::filesystem::path& path, const std::string& text) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
}

// Paths under `dir` that do not exist: a machine with no configuration.
ConfigPaths pathsIn(const std::filesystem::path& dir) {
    ConfigPaths paths;
    paths.vendorFile = dir / "vendor.conf";
    paths.mainFile = dir / "thintrim.conf";
    paths.dropInDir = dir / "thintrim.conf.d";
    return paths;
}

// The InvalidConfig message parseConfig() gives for `text`, or "" if it parsed.
std::string configError(const std::string& text) {
    try {
        (void)parseConfig(text, "/etc/thintrim/thintrim.conf");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InvalidConfig);
        return e.what();
    }
    return "";
}

} // namespace

TEST_CASE("defaults are the documented ones") {
    Config config;
    CHECK(config.schedule.interval == std::chrono::weeks(1));
    CHECK(config.schedule.randomizedDelay == kWholeInterval);
    CHECK(config.schedule.bootDelay == 5min);
    CHECK(config.schedule.earlyTrimSpacing == 1min);
    CHECK(config.schedule.window.empty());
    CHECK(config.schedule.trimBefore.empty());
    CHECK(config.schedule.trimBeforeLead == 30min);
    CHECK(config.trim.pacing == PacingMode::Auto);

    CHECK(std::get<std::uint64_t>(config.schedule.freedSpaceThreshold) == 64 * MiB);
    CHECK(config.schedule.checkInterval == 10s);
    CHECK(config.trim.minimumExtent == 0);
    CHECK(config.trim.chunkSize == GiB);
    CHECK(config.trim.rateLimit == 0);
    CHECK(config.filesystems.include.empty());
    CHECK(config.filesystems.exclude.empty());
    CHECK(config.filesystems.types.empty());
    CHECK(config.metrics.metricsFile.empty());
}

TEST_CASE("no configuration files at all is the defaults") {
    thintrim::test::TempDir dir{"thintrim-config"};
    CHECK(configFiles(pathsIn(dir.path())).empty());
    CHECK(loadConfig(pathsIn(dir.path())) == Config{});
}

TEST_CASE("the spec's example, trailing comments and all, reads as the defaults") {
    ConfigPaths paths = ConfigPaths::explicitFile(test::testData("config/spec-example.conf"));
    // Version 1's example sets RandomizedDelay=100min; since 1.1 the default
    // spreads slots over the whole Interval (RandomizedDelay=infinity). Its
    // freshness settings (8G, 15min) are no longer the defaults either
    // (thintrim.conf(5), FRESHNESS).
    Config expected;
    expected.schedule.randomizedDelay = 100min;
    expected.schedule.freedSpaceThreshold = 8 * GiB;
    expected.schedule.checkInterval = 15min;
    CHECK(loadConfig(paths) == expected);
}

TEST_CASE("the configuration file the package installs is valid") {
    // conf/ sits beside tests/ in the source tree.
    std::filesystem::path shipped = test::testData("../../conf/thintrim.conf");
    REQUIRE(std::filesystem::exists(shipped));
    CHECK(loadConfig(ConfigPaths::explicitFile(shipped)) == Config{});
}

TEST_CASE("every key is read with its units") {
    Config config = parseConfig("[Schedule]\n"
                                "Interval=3d\n"
                                "RandomizedDelay=1h30min\n"
                                "BootDelay=90\n"
                                "FreedSpaceThreshold=10%\n"
                                "CheckInterval=5min\n"
                                "[Trim]\n"
                                "MinimumExtent=64K\n"
                                "ChunkSize=256M\n"
                                "RateLimit=100M/s\n"
                                "[Filesystems]\n"
                                "Include=/ /home /srv/*\n"
                                "Exclude=/srv/scratch*\n"
                                "Types=ext4 xfs\n"
                                "[Metrics]\n"
                                "MetricsFile=/var/lib/prometheus/node-exporter/thintrim.prom\n",
                                "<test>");
    CHECK(config.schedule.interval == 72h);
    CHECK(config.schedule.randomizedDelay == 90min);
    CHECK(config.schedule.bootDelay == 90s);
    CHECK(std::get<Percent>(config.schedule.freedSpaceThreshold).value == 10.0);
    CHECK(config.schedule.checkInterval == 5min);
    CHECK(config.trim.minimumExtent == 64 * 1024);
    CHECK(config.trim.chunkSize == 256 * MiB);
    CHECK(config.trim.rateLimit == 100 * MiB);
    CHECK(config.filesystems.include == std::vector<std::string>{"/", "/home", "/srv/*"});
    CHECK(config.filesystems.exclude == std::vector<std::string>{"/srv/scratch*"});
    CHECK(config.filesystems.types == std::vector<std::string>{"ext4", "xfs"});
    CHECK(config.metrics.metricsFile == "/var/lib/prometheus/node-exporter/thintrim.prom");
}

TEST_CASE("comments, blank lines and whitespace are ignored") {
    Config config = parseConfig("\xEF\xBB\xBF# a comment\r\n"
                                "; another\r\n"
                                "\r\n"
                                "  [ Trim ]  \r\n"
                                "   ChunkSize   =   2G   \r\n"
                                "\t# indented comment\n"
                                "RateLimit=1G # trailing comment\n"
                                "[Schedule]\n"
                                "Interval = 1h 30min\n"
                                "[Trim]\n"          // a section may appear twice
                                "MinimumExtent=4K", // no final newline
                                "<test>");
    CHECK(config.trim.chunkSize == 2 * GiB);
    CHECK(config.trim.rateLimit == GiB);
    CHECK(config.trim.minimumExtent == 4096);
    CHECK(config.schedule.interval == 90min);
}

TEST_CASE("a '#' inside a word is not a comment") {
    Config config = parseConfig("[Metrics]\nMetricsFile=/var/lib/x#1.prom\n", "<test>");
    CHECK(config.metrics.metricsFile == "/var/lib/x#1.prom");
}

TEST_CASE("the last assignment wins and an empty value restores the default") {
    Config base;
    base.trim.chunkSize = 4 * GiB;
    base.filesystems.exclude = {"/srv"};
    Config config = parseConfig("[Trim]\n"
                                "RateLimit=1M\n"
                                "RateLimit=2M\n"
                                "ChunkSize=\n"
                                "[Filesystems]\n"
                                "Exclude=\n",
                                "<test>", base);
    CHECK(config.trim.rateLimit == 2 * MiB);
    CHECK(config.trim.chunkSize == Config{}.trim.chunkSize);
    CHECK(config.filesystems.exclude.empty());
}

TEST_CASE("a zero threshold turns early trims off and stays a size") {
    Config config = parseConfig("[Schedule]\nFreedSpaceThreshold=0\n", "<test>");
    CHECK(std::get<std::uint64_t>(config.schedule.freedSpaceThreshold) == 0);
}

TEST_CASE("vendor file, main file and drop-ins are read in order, later wins") {
    std::filesystem::path dir = test::testData("config/layered");
    ConfigPaths paths;
    paths.vendorFile = dir / "vendor.conf";
    paths.mainFile = dir / "thintrim.conf";
    paths.dropInDir = dir / "thintrim.conf.d";

    auto files = configFiles(paths);
    REQUIRE(files.size() == 5);
    CHECK(files[0].filename() == "vendor.conf");
    CHECK(files[1].filename() == "thintrim.conf");
    CHECK(files[2].filename() == "10-rate.conf");
    CHECK(files[3].filename() == "20-interval.conf");
    CHECK(files[4].filename() == "30-reset.conf");

    Config config = loadConfig(paths);
    CHECK(config.schedule.interval == 24h);       // 20-interval.conf over the main file
    CHECK(config.schedule.randomizedDelay == 1h); // main file
    CHECK(config.schedule.bootDelay == 5min);     // reset by 30-reset.conf
    CHECK(config.trim.chunkSize == 256 * MiB);    // vendor file
    CHECK(config.trim.rateLimit == 100 * MiB);    // 10-rate.conf
    CHECK(config.filesystems.exclude == std::vector<std::string>{"/srv/*", "/mnt/scratch"});
}

TEST_CASE("missing files and directories are fine") {
    thintrim::test::TempDir dir{"thintrim-config"};
    ConfigPaths paths = pathsIn(dir.path());
    writeFile(paths.dropInDir / "only.conf", "[Trim]\nChunkSize=8M\n");
    CHECK(loadConfig(paths).trim.chunkSize == 8 * MiB);
}

TEST_CASE("drop-ins sort by name, not by the order the directory lists them") {
    thintrim::test::TempDir dir{"thintrim-config"};
    ConfigPaths paths = pathsIn(dir.path());
    writeFile(paths.dropInDir / "b.conf", "[Trim]\nChunkSize=2M\n");
    writeFile(paths.dropInDir / "a.conf", "[Trim]\nChunkSize=1M\n");
    writeFile(paths.dropInDir / "c.conf", "[Trim]\nChunkSize=3M\n");
    std::filesystem::create_directories(paths.dropInDir / "z.conf"); // a directory: not read
    CHECK(loadConfig(paths).trim.chunkSize == 3 * MiB);
}

TEST_CASE("--config reads that file and PATH.d, and the file must exist") {
    std::filesystem::path file = test::testData("config/explicit/custom.conf");
    ConfigPaths paths = ConfigPaths::explicitFile(file);
    CHECK(paths.vendorFile.empty());
    CHECK(paths.dropInDir == test::testData("config/explicit/custom.conf.d"));
    Config config = loadConfig(paths);
    CHECK(config.trim.chunkSize == 64 * MiB);
    CHECK(config.trim.minimumExtent == 4096);

    ConfigPaths missing = ConfigPaths::explicitFile(test::testData("config/no-such.conf"));
    try {
        (void)loadConfig(missing);
        FAIL("accepted a missing --config file");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InvalidConfig);
        CHECK_THAT(e.what(), Contains("no-such.conf") && Contains("No such file"));
    }
}

TEST_CASE("an error in a file names the file, the line, the key and the problem") {
    ConfigPaths paths = ConfigPaths::explicitFile(test::testData("config/bad-value.conf"));
    try {
        (void)loadConfig(paths);
        FAIL("accepted ChunkSize=12Q");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InvalidConfig);
        std::string expectedStart =
            test::testData("config/bad-value.conf").string() + ":7: [Trim] ChunkSize=\"12Q\": ";
        CHECK_THAT(e.what(), thintrim::test::StartsWith(expectedStart));
        CHECK_THAT(e.what(), Contains("a size such as"));
    }
}

TEST_CASE("an unreadable configuration file is an error, not the defaults") {
    thintrim::test::TempDir dir{"thintrim-config"};
    ConfigPaths paths = pathsIn(dir.path());
    std::filesystem::create_directories(paths.mainFile); // a directory where the file should be
    try {
        (void)loadConfig(paths);
        FAIL("accepted a directory as the configuration file");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InvalidConfig);
        CHECK_THAT(e.what(), Contains(paths.mainFile.string()) && Contains("cannot read"));
    }
}

TEST_CASE("bad values") {
    struct Case {
        std::string text;
        std::string expected;
    };
    auto [text, expected] = GENERATE(values<Case>({
        {"[Trim]\nChunkSize=12Q\n", ":2: [Trim] ChunkSize=\"12Q\": invalid value"},
        {"[Trim]\nRateLimit=fast\n", ":2: [Trim] RateLimit=\"fast\": invalid value"},
        {"[Trim]\nMinimumExtent=-1\n", "[Trim] MinimumExtent=\"-1\""},
        {"[Schedule]\nInterval=soon\n", ":2: [Schedule] Interval=\"soon\": invalid value"},
        {"[Schedule]\nInterval=0\n", ":2: [Schedule] Interval=\"0\": must be longer than 0"},
        {"[Schedule]\nCheckInterval=0s\n",
         "[Schedule] CheckInterval=\"0s\": must be longer than 0"},
        {"[Schedule]\nFreedSpaceThreshold=150%\n", "[Schedule] FreedSpaceThreshold=\"150%\""},
        {"[Metrics]\nMetricsFile=thintrim.prom\n", "MetricsFile=\"thintrim.prom\": must be an "
                                                   "absolute path"},
        {"[Filesystems]\nExclude=/srv home\n", "Exclude=\"/srv home\": \"home\" can never match"},
        {"[Schedule]\nInterval=15249w\n",
         ":2: [Schedule] Interval=\"15249w\": out of range; Interval takes 1min to 52w"},
        {"[Schedule]\nInterval=30s\n", "Interval=\"30s\": out of range"},
        {"[Schedule]\nCheckInterval=1us\n",
         ":2: [Schedule] CheckInterval=\"1us\": out of range; CheckInterval takes 1s to 1d"},
        {"[Schedule]\nBootDelay=53w\n", "BootDelay=\"53w\": out of range"},
        {"[Schedule]\nFreedSpaceThreshold=2E\n", "out of range; FreedSpaceThreshold takes 0 to 1E"},
        {"[Trim]\nChunkSize=-1G\n",
         ":2: [Trim] ChunkSize=\"-1G\": invalid value \"-1G\" (must not be negative)"},
        {"[Trim]\nRateLimit=2E\n", ":2: [Trim] RateLimit=\"2E\": out of range"},
    }));
    INFO(text);
    std::string message = configError(text);
    CHECK_THAT(message, thintrim::test::StartsWith("/etc/thintrim/thintrim.conf:"));
    CHECK_THAT(message, Contains(expected));
}

TEST_CASE("a line longer than 64 KiB is refused without quoting it") {
    std::string text = "[Filesystems]\nExclude=/" + std::string(70000, 'a') + "\n";
    std::string message = configError(text);
    CHECK_THAT(message, Contains(":2: line longer than 65536 bytes"));
    CHECK(message.size() < 200);
}

TEST_CASE("a NUL byte is refused with its line") {
    using namespace std::string_literals;
    CHECK_THAT(configError("[Trim]\nChunkSize=1G\0x\n"s), Contains(":2: contains a NUL byte"));
}

TEST_CASE("a configuration file larger than 1 MiB is refused") {
    thintrim::test::TempDir dir{"thintrim-config"};
    ConfigPaths paths = pathsIn(dir.path());
    writeFile(paths.mainFile, std::string(std::size_t{2} << 20, '#'));
    try {
        (void)loadConfig(paths);
        FAIL("accepted a 2 MiB file");
    } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::InvalidConfig);
        CHECK_THAT(e.what(), Contains(paths.mainFile.string() + ": larger than 1.0 MiB"));
    }
}

TEST_CASE("zero is fine where it means off") {
    Config config = parseConfig(
        "[Schedule]\nRandomizedDelay=0\nBootDelay=0\n[Trim]\nChunkSize=0\nRateLimit=0\n", "<t>");
    CHECK(config.schedule.randomizedDelay == 0s);
    CHECK(config.schedule.bootDelay == 0s);
    CHECK(config.trim.chunkSize == 0);
}

TEST_CASE("unknown keys suggest the closest known one") {
    CHECK_THAT(configError("[Trim]\nRateLimt=1M\n"),
               Contains(":2: [Trim] RateLimt: unknown key; did you mean RateLimit?"));
    CHECK_THAT(configError("[Trim]\nratelimit=1M\n"), Contains("did you mean RateLimit?"));
    CHECK_THAT(configError("[Trim]\nIntreval=1d\n"),
               Contains("did you mean Interval in [Schedule]?"));
    CHECK_THAT(configError("[Schedule]\nRateLimit=1M\n"),
               Contains(":2: [Schedule] RateLimit: belongs in [Trim], not [Schedule]"));
    std::string far = configError("[Trim]\nSpeed=1M\n");
    CHECK_THAT(far, Contains("[Trim] Speed: unknown key"));
    CHECK_THAT(far, !Contains("did you mean") && Contains("ChunkSize"));
}

TEST_CASE("structural errors") {
    CHECK_THAT(configError("[Trimm]\nChunkSize=1G\n"),
               Contains(":1: unknown section [Trimm]; did you mean [Trim]?"));
    CHECK_THAT(configError("[Network]\n"),
               Contains(":1: unknown section [Network]; known sections: [Schedule], [Trim]"));
    CHECK_THAT(configError("[Trim\n"), Contains(":1: \"[Trim\": a section header must end"));
    CHECK_THAT(configError("Interval=1w\n"),
               Contains(":1: Interval=\"1w\": key outside a section; put it under [Schedule]"));
    CHECK_THAT(configError("Colour=blue\n"),
               Contains(":1: Colour=\"blue\": key outside a section; sections start"));
    CHECK_THAT(configError("[Trim]\n\nChunkSize 1G\n"),
               Contains(":3: \"ChunkSize 1G\": expected Key=Value or [Section]"));
    CHECK_THAT(configError("[Trim]\n=1G\n"), Contains(":2: \"=1G\": the key before = is missing"));
}

TEST_CASE("include, exclude and types select filesystems") {
    Config config;
    CHECK(config.filesystems.selects("/", "ext4"));
    CHECK(config.filesystems.selects("/srv/data", "btrfs"));

    config.filesystems.exclude = {"/srv/*", "/mnt/scratch"};
    CHECK(config.filesystems.selects("/", "ext4"));
    CHECK_FALSE(config.filesystems.selects("/srv/data", "ext4"));
    CHECK_FALSE(config.filesystems.selects("/srv/a/b", "ext4")); // '*' crosses '/'
    CHECK(config.filesystems.selects("/srv", "ext4"));
    CHECK_FALSE(config.filesystems.selects("/mnt/scratch", "ext4"));
    CHECK(config.filesystems.selects("/mnt/scratch2", "ext4"));

    config.filesystems.include = {"/", "/srv/*", "/home"};
    CHECK(config.filesystems.selects("/", "ext4"));
    CHECK(config.filesystems.selects("/home", "ext4"));
    CHECK_FALSE(config.filesystems.selects("/var", "ext4"));
    CHECK_FALSE(config.filesystems.selects("/srv/data", "ext4")); // exclude beats include

    config.filesystems.types = {"ext4", "xfs"};
    CHECK(config.filesystems.selects("/home", "xfs"));
    CHECK_FALSE(config.filesystems.selects("/home", "btrfs"));
}

TEST_CASE("a trailing slash in a pattern still matches the mount point") {
    Config config = parseConfig("[Filesystems]\nExclude=/srv/ /\n", "<test>");
    CHECK(config.filesystems.exclude == std::vector<std::string>{"/srv", "/"});
    CHECK_FALSE(config.filesystems.selects("/srv", "ext4"));
}

TEST_CASE("the rendered configuration reads back the same") {
    Config config;
    CHECK(parseConfig(formatConfig(config), "<rendered>") == config);

    config.schedule.interval = std::chrono::weeks(1) + 26h + 3s + 250ms + 7us;
    config.schedule.randomizedDelay = 0s;
    config.schedule.freedSpaceThreshold = Percent{12.5};
    config.trim.minimumExtent = 4096 + 1;
    config.trim.chunkSize = 3 * MiB;
    config.trim.rateLimit = 100 * MiB;
    config.filesystems.include = {"/", "/home/*"};
    config.filesystems.types = {"ext4"};
    config.metrics.metricsFile = "/run/thintrim.prom";
    config.schedule.window = {{60, 300}, {1320, 120}};
    config.schedule.earlyTrimSpacing = 6h;
    config.trim.pacing = PacingMode::Fixed;
    config.schedule.trimBefore = {{5}, {330}};
    config.schedule.trimBeforeLead = 45min;
    std::string text = formatConfig(config);
    INFO(text);
    CHECK(parseConfig(text, "<rendered>") == config);
    CHECK_THAT(text, Contains("[Schedule]\nInterval=1w 1d 2h 3s 250ms 7us\n"));
    CHECK_THAT(text, Contains("FreedSpaceThreshold=12.5%\n"));
    CHECK_THAT(text, Contains("ChunkSize=3M\n"));
    CHECK_THAT(text, Contains("MinimumExtent=4097\n"));
    CHECK_THAT(text, Contains("[Filesystems]\nInclude=/ /home/*\nExclude=\nTypes=ext4\n"));
    CHECK_THAT(text, Contains("Window=01:00-05:00 22:00-02:00\n"));
    CHECK_THAT(text, Contains("Pacing=fixed\n"));
    CHECK_THAT(text, Contains("TrimBefore=00:05 05:30\nTrimBeforeLead=45min\n"));
    CHECK_THAT(formatConfig(Config{}), Contains("RandomizedDelay=infinity\n"));
}

TEST_CASE("Window, EarlyTrimSpacing and RandomizedDelay=infinity") {
    Config config = parseConfig("[Schedule]\nWindow=01:00-05:00 22:30-24:00\n"
                                "RandomizedDelay=infinity\nEarlyTrimSpacing=12h\n",
                                "<test>");
    CHECK(config.schedule.window == std::vector<TimeWindow>{{60, 300}, {1350, 0}});
    CHECK(config.schedule.randomizedDelay == kWholeInterval);
    CHECK(config.schedule.earlyTrimSpacing == 12h);
    CHECK(parseConfig("[Schedule]\nWindow=\n", "<test>", config).schedule.window.empty());

    CHECK_THAT(configError("[Schedule]\nWindow=01:00-01:00\n"),
               Contains("thintrim.conf:2: [Schedule] Window=\"01:00-01:00\"") &&
                   Contains("starts where it ends"));
    CHECK_THAT(configError("[Schedule]\nWindow=1am-5am\n"), Contains("HH:MM-HH:MM"));
    CHECK(parseConfig("[Trim]\nPacing=fixed\n", "<t>").trim.pacing == PacingMode::Fixed);
    CHECK_THAT(configError("[Trim]\nPacing=gentle\n"),
               Contains("thintrim.conf:2: [Trim] Pacing=\"gentle\"") &&
                   Contains("expected auto or fixed"));
}

TEST_CASE(
    "TrimBefore: times of day in order, TrimBeforeLead bounded, errors say what is accepted") {
    Config config =
        parseConfig("[Schedule]\nTrimBefore=13:00 5:30 13:00\nTrimBeforeLead=1h\n", "<test>");
    CHECK(config.schedule.trimBefore == std::vector<DailyDeadline>{{330}, {780}});
    CHECK(config.schedule.trimBeforeLead == 1h);
    CHECK(parseConfig("[Schedule]\nTrimBefore=\n", "<test>", config).schedule.trimBefore.empty());

    CHECK_THAT(configError("[Schedule]\nTrimBefore=05:30 24:00\n"),
               Contains("thintrim.conf:2: [Schedule] TrimBefore=\"05:30 24:00\"") &&
                   Contains("\"24:00\" is not a time of day; expected HH:MM in local time"));
    CHECK_THAT(configError("[Schedule]\nTrimBefore=5am\n"),
               Contains("\"5am\" is not a time of day"));
    CHECK_THAT(configError("[Schedule]\nTrimBefore=05:30-06:00\n"),
               Contains("is not a time of day"));
    CHECK_THAT(configError("[Schedule]\nTrimBeforeLead=13h\n"),
               Contains("[Schedule] TrimBeforeLead=\"13h\"") && Contains("takes 0 to 12h"));
}
