// SPDX-License-Identifier: GPL-2.0-or-later
#include "base/atomic_file.h"
#include "base/error.h"
#include "catch.h"
#include "temp_dir.h"

#include <fstream>
#include <sstream>

#include <sys/stat.h>

using namespace thintrim;
using thintrim::test::Contains;

namespace {

std::string readFile(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

mode_t modeOf(const std::filesystem::path& path) {
    struct stat info {};
    REQUIRE(::lstat(path.c_str(), &info) == 0);
    return info.st_mode & 07777;
}

} // namespace

TEST_CASE("a symlink planted at the temporary name is replaced, never followed") {
    thintrim::test::TempDir dir{"thintrim-atomic"};
    const auto victim = dir.path() / "victim";
    std::ofstream(victim) << "precious";
    ::chmod(victim.c_str(), 0600);
    std::filesystem::create_symlink(victim, dir.path() / "out.prom.tmp");

    writeFileAtomically(dir.path() / "out.prom", "out.prom.tmp", "metrics\n", 0644, true);

    CHECK(readFile(victim) == "precious");
    CHECK(modeOf(victim) == 0600);
    CHECK(readFile(dir.path() / "out.prom") == "metrics\n");
    CHECK(modeOf(dir.path() / "out.prom") == 0644);
    CHECK_FALSE(
        std::filesystem::exists(std::filesystem::symlink_status(dir.path() / "out.prom.tmp")));
}

TEST_CASE("exactMode ignores the umask") {
    thintrim::test::TempDir dir{"thintrim-atomic"};
    const mode_t old = ::umask(077);
    writeFileAtomically(dir.path() / "exact", "exact.tmp", "x", 0644, true);
    writeFileAtomically(dir.path() / "masked", "masked.tmp", "x", 0644);
    ::umask(old);
    CHECK(modeOf(dir.path() / "exact") == 0644);
    CHECK(modeOf(dir.path() / "masked") == 0600);
}

TEST_CASE("a failed rename leaves the old file and no temporary file") {
    thintrim::test::TempDir dir{"thintrim-atomic"};
    std::filesystem::create_directories(dir.path() / "target" / "occupied");
    CHECK_THROWS_WITH(writeFileAtomically(dir.path() / "target", "target.tmp", "x", 0644),
                      Contains("cannot rename") && Contains((dir.path() / "target").string()));
    CHECK_FALSE(std::filesystem::exists(dir.path() / "target.tmp"));
    CHECK(std::filesystem::is_directory(dir.path() / "target" / "occupied"));
}
