// SPDX-License-Identifier: GPL-2.0-or-later
// Issue 10, item 5: f2fs refuses FITRIM through a read-only mount (EROFS), and
// under ProtectSystem=strict every mount the daemon saw at start is a
// read-only view of a read-write filesystem. The trim engine then goes
// through openWritableView(): a private writable copy of that one mount.
// This machine's kernel has no f2fs (the VM suite trims a real one, see
// tests/vm/scenarios/hardening.sh); here the copy itself is checked, in a
// mount namespace of our own with a read-only bind view, as systemd makes it:
//   - writing through the view fails with EROFS (what f2fs's FITRIM hits),
//   - writing through the copy works,
//   - the path stays read-only for everyone (nothing was attached),
//   - an ro superblock stays ro: the copy cannot be used to write to it.
// Root only; exit 77 otherwise.
#include "base/unique_fd.h"
#include "base/writable_view.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

using thintrim::UniqueFd;

namespace {

int failures = 0;

void check(bool ok, const char* what, int err = 0) {
    std::printf("%s - %s%s%s\n", ok ? "ok" : "not ok", what, err != 0 ? ": " : "",
                err != 0 ? std::strerror(err) : "");
    if (!ok)
        ++failures;
}

// errno of creating `name` under the directory `dirFd`, 0 when it worked.
int createError(int dirFd, const char* name) {
    UniqueFd file{::openat(dirFd, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)};
    return file.isValid() ? 0 : errno;
}

[[noreturn]] void skip(const char* why) {
    std::printf("SKIP: %s (%s)\n", why, std::strerror(errno));
    std::exit(77);
}

} // namespace

int main() {
    if (::geteuid() != 0) {
        std::printf("SKIP: needs root (a mount namespace of its own)\n");
        return 77;
    }
    if (::unshare(CLONE_NEWNS) != 0)
        skip("cannot make a mount namespace");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        skip("cannot make the mounts private");
    char pattern[] = "/tmp/thintrim-writable-view-XXXXXX";
    const char* dir = ::mkdtemp(pattern);
    if (dir == nullptr)
        skip("mkdtemp");
    const std::string rw = std::string(dir) + "/rw";
    const std::string view = std::string(dir) + "/view";
    const std::string roSuper = std::string(dir) + "/ro-superblock";
    for (const std::string& path : {rw, view, roSuper})
        ::mkdir(path.c_str(), 0755);
    if (::mount("tt-view", rw.c_str(), "tmpfs", 0, "size=1m") != 0)
        skip("cannot mount a tmpfs");
    // ProtectSystem=strict: a read-only bind of a read-write filesystem.
    if (::mount(rw.c_str(), view.c_str(), nullptr, MS_BIND, nullptr) != 0 ||
        ::mount(nullptr, view.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0)
        skip("cannot make a read-only bind mount");

    UniqueFd viewFd{::open(view.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    check(viewFd.isValid(), "the read-only view opens");
    check(createError(viewFd.get(), "through-view") == EROFS,
          "writing through the read-only view fails with EROFS, as f2fs's FITRIM does");

    try {
        UniqueFd writable = thintrim::openWritableView(viewFd.get());
        const int err = createError(writable.get(), "through-copy");
        check(err == 0, "writing through the private writable copy works", err);
    } catch (const std::exception& e) {
        std::printf("# %s\n", e.what());
        check(false, "openWritableView succeeds for a read-only view of a read-write filesystem");
    }
    struct stat status {};
    check(::stat((rw + "/through-copy").c_str(), &status) == 0,
          "what went through the copy is in the filesystem");
    check(::creat((view + "/by-path").c_str(), 0600) < 0 && errno == EROFS,
          "the view's path is still read-only afterwards (the copy was attached nowhere)");

    // An ro superblock: the copy must not make it writable.
    if (::mount("tt-ro", roSuper.c_str(), "tmpfs", MS_RDONLY, "size=1m") == 0) {
        UniqueFd roFd{::open(roSuper.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
        try {
            UniqueFd writable = thintrim::openWritableView(roFd.get());
            check(createError(writable.get(), "x") == EROFS,
                  "a read-only superblock stays read-only through the copy");
        } catch (const std::exception& e) {
            std::printf("# refused: %s\n", e.what());
            check(true, "a read-only superblock stays read-only through the copy");
        }
    }
    // Mounted in this process's own namespace: only the directories are left.
    for (const std::string& path : {view, rw, roSuper}) {
        ::umount2(path.c_str(), MNT_DETACH);
        ::rmdir(path.c_str());
    }
    ::rmdir(dir);
    return failures == 0 ? 0 : 1;
}
