// SPDX-License-Identifier: GPL-2.0-or-later
#include "config/config.h"

#include "base/error.h"
#include "base/unique_fd.h"
#include "build_config.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <ranges>
#include <system_error>
#include <variant>

#include <fcntl.h>
#include <fmt/format.h>
#include <fnmatch.h>
#include <unistd.h>

namespace thintrim {

namespace {

// Where a key's value lives in Config. The syntax of the text is a separate
// property because the same storage type is read in different ways (a size
// or a rate; any words or mount point globs).
using FieldRef = std::variant<Microseconds*, std::uint64_t*, SizeOrPercent*,
                              std::vector<std::string>*, std::filesystem::path*, bool*,
                              std::vector<TimeWindow>*, PacingMode*, std::vector<DailyDeadline>*>;

enum class Syntax {
    Duration,
    PositiveDuration,
    Size,
    Rate,
    SizeOrPercent,
    MountPointGlobs,
    Words,
    AbsolutePath,
    Boolean,
    DurationOrInfinity, // "infinity" = kWholeInterval
    TimeWindows,
    Pacing,
    TimesOfDay,
};

// `syntax` must suit the type `field` points to (std::get checks it); the
// unit test that reads every key exercises each pair.
struct KeyInfo {
    std::string_view section;
    std::string_view name;
    Syntax syntax;
    FieldRef (*field)(Config&);
    // Durations in microseconds, sizes in bytes; thintrim.conf(5) lists them.
    // They keep every later sum (a deadline, an offset) far from overflow and
    // the loop from spinning on CheckInterval=1us.
    std::uint64_t minimum = 0;
    std::uint64_t maximum = 0;
};

constexpr std::uint64_t kMinute = 60'000'000;
constexpr std::uint64_t kDay = 86'400'000'000;
constexpr std::uint64_t kWeek = 7 * kDay;
constexpr std::uint64_t kLongestDelay = 52 * kWeek;
// ForgetAfter: ten years is "never" for a machine's filesystems.
constexpr std::uint64_t kLongestMemory = 520 * kWeek;
constexpr std::uint64_t kLargestSize = std::uint64_t{1} << 60; // 1E

// A configuration file is a page of text: anything larger is a mistake (or
// a device), and reading it whole must not exhaust memory.
constexpr std::size_t kMaxConfigFileBytes = std::size_t{1} << 20;
constexpr std::size_t kMaxLineBytes = std::size_t{1} << 16;

// Every key thintrim knows, in the order formatConfig() writes them.
constexpr std::array<std::string_view, 4> kSections{"Schedule", "Trim", "Filesystems", "Metrics"};
constexpr std::array<KeyInfo, 19> kKeys{{
    {"Schedule", "Interval", Syntax::PositiveDuration,
     [](Config& c) -> FieldRef { return &c.schedule.interval; }, kMinute, kLongestDelay},
    {"Schedule", "RandomizedDelay", Syntax::DurationOrInfinity,
     [](Config& c) -> FieldRef { return &c.schedule.randomizedDelay; }, 0, kLongestDelay},
    {"Schedule", "BootDelay", Syntax::Duration,
     [](Config& c) -> FieldRef { return &c.schedule.bootDelay; }, 0, kLongestDelay},
    {"Schedule", "FreedSpaceThreshold", Syntax::SizeOrPercent,
     [](Config& c) -> FieldRef { return &c.schedule.freedSpaceThreshold; }, 0, kLargestSize},
    {"Schedule", "EarlyTrimSpacing", Syntax::Duration,
     [](Config& c) -> FieldRef { return &c.schedule.earlyTrimSpacing; }, 0, kLongestDelay},
    {"Schedule", "CheckInterval", Syntax::PositiveDuration,
     [](Config& c) -> FieldRef { return &c.schedule.checkInterval; }, 1'000'000, kDay},
    {"Schedule", "Window", Syntax::TimeWindows,
     [](Config& c) -> FieldRef { return &c.schedule.window; }},
    {"Schedule", "TrimBefore", Syntax::TimesOfDay,
     [](Config& c) -> FieldRef { return &c.schedule.trimBefore; }},
    {"Schedule", "TrimBeforeLead", Syntax::Duration,
     [](Config& c) -> FieldRef { return &c.schedule.trimBeforeLead; }, 0, kDay / 2},
    {"Schedule", "ForgetAfter", Syntax::Duration,
     [](Config& c) -> FieldRef { return &c.schedule.forgetAfter; }, 0, kLongestMemory},
    {"Trim", "MinimumExtent", Syntax::Size,
     [](Config& c) -> FieldRef { return &c.trim.minimumExtent; }, 0, kLargestSize},
    {"Trim", "ChunkSize", Syntax::Size, [](Config& c) -> FieldRef { return &c.trim.chunkSize; }, 0,
     kLargestSize},
    {"Trim", "RateLimit", Syntax::Rate, [](Config& c) -> FieldRef { return &c.trim.rateLimit; }, 0,
     kLargestSize},
    {"Trim", "Pacing", Syntax::Pacing, [](Config& c) -> FieldRef { return &c.trim.pacing; }},
    {"Filesystems", "Include", Syntax::MountPointGlobs,
     [](Config& c) -> FieldRef { return &c.filesystems.include; }},
    {"Filesystems", "Exclude", Syntax::MountPointGlobs,
     [](Config& c) -> FieldRef { return &c.filesystems.exclude; }},
    {"Filesystems", "Types", Syntax::Words,
     [](Config& c) -> FieldRef { return &c.filesystems.types; }},
    {"Filesystems", "UserMedia", Syntax::Boolean,
     [](Config& c) -> FieldRef { return &c.filesystems.userMedia; }},
    {"Metrics", "MetricsFile", Syntax::AbsolutePath,
     [](Config& c) -> FieldRef { return &c.metrics.metricsFile; }},
}};

bool isBlank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && isBlank(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && isBlank(s.back()))
        s.remove_suffix(1);
    return s;
}

std::vector<std::string> splitWords(std::string_view text) {
    std::vector<std::string> words;
    while (true) {
        text = trim(text);
        if (text.empty())
            return words;
        std::size_t end = 0;
        while (end < text.size() && !isBlank(text[end]))
            ++end;
        words.emplace_back(text.substr(0, end));
        text.remove_prefix(end);
    }
}

// The value part of "Key=Value", without a trailing comment. systemd itself
// has no trailing comments, but the documented example configuration uses
// them ("Interval=1w   # how often..."); read literally, "Include=  # ..."
// would become three bogus globs. A '#' only starts a comment after blank
// space, so values never containing blanks (paths, globs) keep a literal '#'.
std::string_view valueWithoutComment(std::string_view raw) {
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '#' && (i == 0 || isBlank(raw[i - 1])))
            return trim(raw.substr(0, i));
    }
    return trim(raw);
}

std::string lowercase(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

// Levenshtein distance ignoring case: "ratelimit" is a typo of "RateLimit".
std::size_t editDistance(std::string_view a, std::string_view b) {
    std::string left = lowercase(a);
    std::string right = lowercase(b);
    std::vector<std::size_t> previous(right.size() + 1);
    std::vector<std::size_t> current(right.size() + 1);
    for (std::size_t j = 0; j <= right.size(); ++j)
        previous[j] = j;
    for (std::size_t i = 1; i <= left.size(); ++i) {
        current[0] = i;
        for (std::size_t j = 1; j <= right.size(); ++j) {
            std::size_t substitution = previous[j - 1] + (left[i - 1] == right[j - 1] ? 0 : 1);
            current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
        }
        std::swap(previous, current);
    }
    return previous[right.size()];
}

constexpr std::size_t kMaxSuggestionDistance = 2;

// The known name closest to `name`, if close enough to be a typo of it.
template <typename Range, typename NameOf>
std::optional<std::ranges::range_value_t<Range>> closest(std::string_view name,
                                                         const Range& candidates, NameOf nameOf) {
    std::optional<std::ranges::range_value_t<Range>> best;
    std::size_t bestDistance = kMaxSuggestionDistance + 1;
    for (const auto& candidate : candidates) {
        std::size_t distance = editDistance(name, nameOf(candidate));
        if (distance < bestDistance) {
            best = candidate;
            bestDistance = distance;
        }
    }
    return best;
}

const KeyInfo* findKey(std::string_view section, std::string_view name) {
    for (const KeyInfo& key : kKeys) {
        if (key.section == section && key.name == name)
            return &key;
    }
    return nullptr;
}

std::string knownSectionsText() {
    std::string text;
    for (std::string_view section : kSections)
        text += fmt::format("{}[{}]", text.empty() ? "" : ", ", section);
    return text;
}

[[noreturn]] void invalidConfig(const std::string& message) {
    throw Error(ErrorCode::InvalidConfig, message);
}

std::string unknownKeyProblem(std::string_view section, std::string_view name) {
    for (const KeyInfo& key : kKeys) {
        if (key.name == name)
            return fmt::format("belongs in [{}], not [{}]", key.section, section);
    }
    std::vector<KeyInfo> sameSection;
    for (const KeyInfo& key : kKeys) {
        if (key.section == section)
            sameSection.push_back(key);
    }
    auto nameOf = [](const KeyInfo& key) { return key.name; };
    if (auto suggestion = closest(name, sameSection, nameOf))
        return fmt::format("unknown key; did you mean {}?", suggestion->name);
    if (auto suggestion = closest(name, kKeys, nameOf))
        return fmt::format("unknown key; did you mean {} in [{}]?", suggestion->name,
                           suggestion->section);
    std::string known;
    for (const KeyInfo& key : sameSection)
        known += fmt::format("{}{}", known.empty() ? "" : ", ", key.name);
    return fmt::format("unknown key (known in [{}]: {})", section, known);
}

// The unit parsers report bad text as InvalidArgument; in a file it is a
// configuration error, and their message already starts with `what`.
template <typename Parse>
auto parseUnit(Parse parse) {
    try {
        return parse();
    } catch (const Error& e) {
        if (e.code() != ErrorCode::InvalidArgument)
            throw;
        invalidConfig(e.what());
    }
}

// Mount points in mountinfo carry no trailing slash (except "/"), so a
// pattern written with one would silently never match.
std::string normalizedGlob(std::string glob) {
    while (glob.size() > 1 && glob.back() == '/')
        glob.pop_back();
    return glob;
}

std::string formatExactSize(std::uint64_t bytes);
std::string formatExactDuration(Microseconds duration);

void checkDurationBounds(const KeyInfo& key, Microseconds duration, const std::string& what) {
    const auto count = static_cast<std::uint64_t>(duration.count());
    if (count >= key.minimum && count <= key.maximum)
        return;
    const auto bound = [](std::uint64_t us) {
        return formatExactDuration(Microseconds(static_cast<Microseconds::rep>(us)));
    };
    if (key.syntax == Syntax::PositiveDuration && count == 0)
        invalidConfig(
            fmt::format("{}: must be longer than 0 (at least {})", what, bound(key.minimum)));
    invalidConfig(fmt::format("{}: out of range; {} takes {} to {}", what, key.name,
                              bound(key.minimum), bound(key.maximum)));
}

void checkSizeBounds(const KeyInfo& key, std::uint64_t bytes, const std::string& what) {
    if (bytes < key.minimum || bytes > key.maximum)
        invalidConfig(fmt::format("{}: out of range; {} takes {} to {}", what, key.name,
                                  formatExactSize(key.minimum), formatExactSize(key.maximum)));
}

void assignValue(const KeyInfo& key, FieldRef field, std::string_view value,
                 const std::string& what) {
    switch (key.syntax) {
    case Syntax::Duration:
    case Syntax::PositiveDuration: {
        Microseconds duration = parseUnit([&] { return parseDuration(value, what); });
        checkDurationBounds(key, duration, what);
        *std::get<Microseconds*>(field) = duration;
        return;
    }
    case Syntax::DurationOrInfinity: {
        if (value == "infinity") {
            *std::get<Microseconds*>(field) = kWholeInterval;
            return;
        }
        const Microseconds duration = parseUnit([&] { return parseDuration(value, what); });
        checkDurationBounds(key, duration, what);
        *std::get<Microseconds*>(field) = duration;
        return;
    }
    case Syntax::TimeWindows: {
        std::vector<TimeWindow> windows;
        for (const std::string& word : splitWords(value))
            windows.push_back(parseUnit([&] { return parseTimeWindow(word, what); }));
        *std::get<std::vector<TimeWindow>*>(field) = std::move(windows);
        return;
    }
    case Syntax::TimesOfDay: {
        std::vector<DailyDeadline> deadlines;
        for (const std::string& word : splitWords(value)) {
            const std::optional<int> minute = parseTimeOfDay(word);
            if (!minute)
                invalidConfig(fmt::format("{}: \"{}\" is not a time of day; expected HH:MM in "
                                          "local time (00:00 to 23:59), several separated by "
                                          "spaces, e.g. 05:30 or 01:00 13:00",
                                          what, word));
            deadlines.push_back({*minute});
        }
        std::sort(
            deadlines.begin(), deadlines.end(),
            [](const DailyDeadline& a, const DailyDeadline& b) { return a.minute < b.minute; });
        deadlines.erase(std::unique(deadlines.begin(), deadlines.end()), deadlines.end());
        *std::get<std::vector<DailyDeadline>*>(field) = std::move(deadlines);
        return;
    }
    case Syntax::Pacing:
        if (const std::optional<PacingMode> mode = kPacingModes.find(value))
            *std::get<PacingMode*>(field) = *mode;
        else
            invalidConfig(fmt::format("{}: expected {}", what, kPacingModes.acceptedNames()));
        return;
    case Syntax::Size:
    case Syntax::Rate: {
        const std::uint64_t bytes = parseUnit([&] {
            return key.syntax == Syntax::Size ? parseSize(value, what) : parseRate(value, what);
        });
        checkSizeBounds(key, bytes, what);
        *std::get<std::uint64_t*>(field) = bytes;
        return;
    }
    case Syntax::SizeOrPercent: {
        SizeOrPercent threshold = parseUnit([&] { return parseSizeOrPercent(value, what); });
        if (const auto* bytes = std::get_if<std::uint64_t>(&threshold))
            checkSizeBounds(key, *bytes, what);
        *std::get<SizeOrPercent*>(field) = threshold;
        return;
    }
    case Syntax::MountPointGlobs: {
        std::vector<std::string> globs;
        for (std::string& word : splitWords(value)) {
            // Mount points are absolute paths: "home" would match nothing,
            // silently. Only '/' or a wildcard can start a useful pattern.
            if (word.find_first_of("/*?[") != 0)
                invalidConfig(fmt::format("{}: \"{}\" can never match a mount point; patterns "
                                          "start with / or a wildcard, e.g. /srv/*",
                                          what, word));
            globs.push_back(normalizedGlob(std::move(word)));
        }
        *std::get<std::vector<std::string>*>(field) = std::move(globs);
        return;
    }
    case Syntax::Words:
        *std::get<std::vector<std::string>*>(field) = splitWords(value);
        return;
    case Syntax::AbsolutePath:
        if (value.front() != '/')
            invalidConfig(fmt::format("{}: must be an absolute path", what));
        *std::get<std::filesystem::path*>(field) = std::filesystem::path(value);
        return;
    case Syntax::Boolean:
        // systemd's spellings.
        if (value == "yes" || value == "true" || value == "on" || value == "1")
            *std::get<bool*>(field) = true;
        else if (value == "no" || value == "false" || value == "off" || value == "0")
            *std::get<bool*>(field) = false;
        else
            invalidConfig(fmt::format("{}: \"{}\" is not yes or no", what, value));
        return;
    }
}

void applyAssignment(Config& config, std::string_view section, std::string_view name,
                     std::string_view value, const std::string& location) {
    const KeyInfo* key = findKey(section, name);
    if (key == nullptr)
        invalidConfig(fmt::format("{}: [{}] {}: {}", location, section, name,
                                  unknownKeyProblem(section, name)));
    if (value.empty()) {
        // Config{} holds the documented defaults; the empty value restores one.
        Config defaults;
        FieldRef source = key->field(defaults);
        FieldRef target = key->field(config);
        std::visit([&](auto* to) { *to = *std::get<decltype(to)>(source); }, target);
        return;
    }
    std::string what = fmt::format("{}: [{}] {}=\"{}\"", location, section, name, value);
    assignValue(*key, key->field(config), value, what);
}

std::string formatExactSize(std::uint64_t bytes) {
    if (bytes == 0)
        return "0";
    static constexpr std::array<std::pair<char, int>, 6> kUnits{
        {{'E', 60}, {'P', 50}, {'T', 40}, {'G', 30}, {'M', 20}, {'K', 10}}};
    for (auto [letter, shift] : kUnits) {
        std::uint64_t unit = std::uint64_t{1} << shift;
        if (bytes % unit == 0)
            return fmt::format("{}{}", bytes / unit, letter);
    }
    return std::to_string(bytes);
}

// formatDuration() rounds for people; a configuration must read back exactly.
std::string formatExactDuration(Microseconds duration) {
    std::int64_t rest = duration.count();
    if (rest == 0)
        return "0";
    static constexpr std::array<std::pair<std::string_view, std::int64_t>, 7> kUnits{{
        {"w", 604'800'000'000},
        {"d", 86'400'000'000},
        {"h", 3'600'000'000},
        {"min", 60'000'000},
        {"s", 1'000'000},
        {"ms", 1'000},
        {"us", 1},
    }};
    std::string text;
    for (auto [name, length] : kUnits) {
        if (rest >= length) {
            text += fmt::format("{}{}{}", text.empty() ? "" : " ", rest / length, name);
            rest %= length;
        }
    }
    return text;
}

std::string joinWords(const std::vector<std::string>& words) {
    std::string text;
    for (const std::string& word : words)
        text += (text.empty() ? "" : " ") + word;
    return text;
}

std::string formatValue(const KeyInfo& key, FieldRef field) {
    switch (key.syntax) {
    case Syntax::Duration:
    case Syntax::PositiveDuration:
        return formatExactDuration(*std::get<Microseconds*>(field));
    case Syntax::Size:
    case Syntax::Rate:
        return formatExactSize(*std::get<std::uint64_t*>(field));
    case Syntax::SizeOrPercent: {
        const SizeOrPercent& threshold = *std::get<SizeOrPercent*>(field);
        if (const auto* percent = std::get_if<Percent>(&threshold))
            return fmt::format("{}%", percent->value);
        return formatExactSize(std::get<std::uint64_t>(threshold));
    }
    case Syntax::MountPointGlobs:
    case Syntax::Words:
        return joinWords(*std::get<std::vector<std::string>*>(field));
    case Syntax::AbsolutePath:
        return std::get<std::filesystem::path*>(field)->string();
    case Syntax::Boolean:
        return *std::get<bool*>(field) ? "yes" : "no";
    case Syntax::DurationOrInfinity: {
        const Microseconds duration = *std::get<Microseconds*>(field);
        return duration == kWholeInterval ? "infinity" : formatExactDuration(duration);
    }
    case Syntax::TimeWindows: {
        std::vector<std::string> words;
        for (const TimeWindow& window : *std::get<std::vector<TimeWindow>*>(field))
            words.push_back(formatTimeWindow(window));
        return joinWords(words);
    }
    case Syntax::Pacing:
        return std::string(kPacingModes.name(*std::get<PacingMode*>(field)));
    case Syntax::TimesOfDay: {
        std::vector<std::string> words;
        for (const DailyDeadline& deadline : *std::get<std::vector<DailyDeadline>*>(field))
            words.push_back(fmt::format("{:02}:{:02}", deadline.minute / 60, deadline.minute % 60));
        return joinWords(words);
    }
    }
    return {};
}

// Reads a whole file; errors (but a missing file) are configuration errors
// because the daemon must not start on a configuration it could not read.
std::string readConfigFile(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd.isValid())
        invalidConfig(fmt::format("{}: cannot read: {}", path.string(), std::strerror(errno)));
    std::string text;
    std::array<char, 8192> buffer{};
    while (true) {
        ssize_t got = ::read(fd.get(), buffer.data(), buffer.size());
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            invalidConfig(fmt::format("{}: cannot read: {}", path.string(), std::strerror(errno)));
        if (got == 0)
            return text;
        text.append(buffer.data(), static_cast<std::size_t>(got));
        if (text.size() > kMaxConfigFileBytes)
            invalidConfig(fmt::format("{}: larger than {}; a configuration file is at most that",
                                      path.string(), formatSize(kMaxConfigFileBytes)));
    }
}

// Whether `path` should be read: present, or present-but-unreadable (so that
// reading reports why). Absent is fine.
bool isPresent(const std::filesystem::path& path) {
    std::error_code error;
    auto status = std::filesystem::status(path, error);
    if (status.type() == std::filesystem::file_type::not_found)
        return false;
    return true;
}

std::vector<std::filesystem::path> dropIns(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> files;
    std::error_code error;
    std::filesystem::directory_iterator it(dir, error);
    if (error == std::errc::no_such_file_or_directory)
        return files;
    if (error)
        invalidConfig(
            fmt::format("{}: cannot list drop-in directory: {}", dir.string(), error.message()));
    for (const auto& entry : it) {
        const std::filesystem::path& path = entry.path();
        // Only "*.conf", like systemd: editors' "foo.conf~" and packaging's
        // "foo.conf.dpkg-old" must not take effect.
        if (path.extension() != ".conf" || path.stem().empty())
            continue;
        std::error_code typeError;
        if (entry.is_directory(typeError))
            continue;
        files.push_back(path);
    }
    std::sort(files.begin(), files.end(),
              [](const auto& a, const auto& b) { return a.filename() < b.filename(); });
    return files;
}

} // namespace

bool FilesystemsConfig::selects(std::string_view mountPoint, std::string_view fsType) const {
    std::string path(mountPoint);
    auto matchesAny = [&](const std::vector<std::string>& globs) {
        return std::any_of(globs.begin(), globs.end(), [&](const std::string& glob) {
            return ::fnmatch(glob.c_str(), path.c_str(), 0) == 0;
        });
    };
    if (!include.empty() && !matchesAny(include))
        return false;
    if (matchesAny(exclude))
        return false;
    if (!types.empty() && std::find(types.begin(), types.end(), fsType) == types.end())
        return false;
    return true;
}

ConfigPaths ConfigPaths::installed() {
    ConfigPaths paths;
    paths.vendorFile = std::filesystem::path(THINTRIM_VENDORCONFDIR) / "thintrim.conf";
    paths.mainFile = std::filesystem::path(THINTRIM_SYSCONFDIR) / "thintrim.conf";
    paths.dropInDir = std::filesystem::path(THINTRIM_SYSCONFDIR) / "thintrim.conf.d";
    return paths;
}

ConfigPaths ConfigPaths::explicitFile(const std::filesystem::path& file) {
    ConfigPaths paths;
    paths.vendorFile.clear();
    paths.mainFile = file;
    paths.dropInDir = std::filesystem::path(file.string() + ".d");
    paths.mainFileRequired = true;
    return paths;
}

std::vector<std::filesystem::path> configFiles(const ConfigPaths& paths) {
    std::vector<std::filesystem::path> files;
    if (!paths.vendorFile.empty() && isPresent(paths.vendorFile))
        files.push_back(paths.vendorFile);
    if (isPresent(paths.mainFile))
        files.push_back(paths.mainFile);
    else if (paths.mainFileRequired)
        invalidConfig(
            fmt::format("{}: cannot read: {}", paths.mainFile.string(), std::strerror(ENOENT)));
    for (auto& dropIn : dropIns(paths.dropInDir))
        files.push_back(std::move(dropIn));
    return files;
}

Config loadConfig(const ConfigPaths& paths) {
    Config config;
    for (const auto& file : configFiles(paths))
        config = parseConfig(readConfigFile(file), file.string(), config);
    return config;
}

Config parseConfig(std::string_view text, std::string_view origin, const Config& base) {
    Config config = base;
    if (text.starts_with("\xEF\xBB\xBF"))
        text.remove_prefix(3); // a UTF-8 byte order mark from some editors
    std::optional<std::string_view> section;
    std::size_t lineNumber = 0;
    while (!text.empty()) {
        std::size_t end = text.find('\n');
        std::string_view line = trim(text.substr(0, end));
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        ++lineNumber;
        std::string location = fmt::format("{}:{}", origin, lineNumber);
        // Checked before the line is quoted in any message.
        if (line.size() > kMaxLineBytes)
            invalidConfig(fmt::format("{}: line longer than {} bytes", location, kMaxLineBytes));
        if (line.find('\0') != std::string_view::npos)
            invalidConfig(fmt::format("{}: contains a NUL byte; is this a text file?", location));

        if (line.empty() || line.front() == '#' || line.front() == ';')
            continue;

        if (line.front() == '[') {
            if (line.back() != ']')
                invalidConfig(
                    fmt::format("{}: \"{}\": a section header must end with ]", location, line));
            std::string_view name = trim(line.substr(1, line.size() - 2));
            auto known = std::find(kSections.begin(), kSections.end(), name);
            if (known == kSections.end()) {
                auto suggestion = closest(name, kSections, [](std::string_view s) { return s; });
                invalidConfig(fmt::format(
                    "{}: unknown section [{}]; {}", location, name,
                    suggestion ? fmt::format("did you mean [{}]?", *suggestion)
                               : fmt::format("known sections: {}", knownSectionsText())));
            }
            section = *known;
            continue;
        }

        std::size_t equals = line.find('=');
        if (equals == std::string_view::npos)
            invalidConfig(
                fmt::format("{}: \"{}\": expected Key=Value or [Section]", location, line));
        std::string_view name = trim(line.substr(0, equals));
        std::string_view value = valueWithoutComment(line.substr(equals + 1));
        if (name.empty())
            invalidConfig(fmt::format("{}: \"{}\": the key before = is missing", location, line));
        if (!section) {
            std::string hint = fmt::format("sections start with a line such as [{}]", kSections[0]);
            for (const KeyInfo& key : kKeys) {
                if (key.name == name)
                    hint = fmt::format("put it under [{}]", key.section);
            }
            invalidConfig(fmt::format("{}: {}=\"{}\": key outside a section; {}", location, name,
                                      value, hint));
        }
        applyAssignment(config, *section, name, value, location);
    }
    return config;
}

std::string formatConfig(const Config& config) {
    // The key table hands out mutable references; format a copy.
    Config copy = config;
    std::string text;
    for (std::string_view section : kSections) {
        text += fmt::format("{}[{}]\n", text.empty() ? "" : "\n", section);
        for (const KeyInfo& key : kKeys) {
            if (key.section == section)
                text += fmt::format("{}={}\n", key.name, formatValue(key, key.field(copy)));
        }
    }
    return text;
}

Microseconds ScheduleConfig::effectiveForgetAfter() const {
    constexpr Microseconds::rep kIntervals = 4;
    if (forgetAfter > Microseconds{0})
        return forgetAfter;
    if (interval > Microseconds::max() / kIntervals)
        return Microseconds::max();
    return interval * kIntervals;
}

} // namespace thintrim
