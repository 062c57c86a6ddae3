// SPDX-License-Identifier: GPL-2.0-or-later
#include "base/atomic_file.h"

#include "base/error.h"
#include "base/unique_fd.h"

#include <cerrno>
#include <string>

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace thintrim {

namespace {

// Removes the temporary file unless the rename consumed it, so a failed
// write leaves nothing behind.
class TemporaryFile {
public:
    TemporaryFile(int dirFd, std::string name) : dirFd_(dirFd), name_(std::move(name)) {}
    TemporaryFile(const TemporaryFile&) = delete;
    TemporaryFile& operator=(const TemporaryFile&) = delete;
    ~TemporaryFile() {
        if (!renamed_)
            ::unlinkat(dirFd_, name_.c_str(), 0);
    }
    void markRenamed() { renamed_ = true; }

private:
    int dirFd_;
    std::string name_;
    bool renamed_ = false;
};

} // namespace

void writeFileAtomically(const std::filesystem::path& path, std::string_view temporaryName,
                         std::string_view contents, mode_t mode, bool exactMode) {
    const std::filesystem::path dirPath =
        path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    const std::string fileName = path.filename().string();
    const std::string temporary(temporaryName);
    const std::string temporaryPath = (dirPath / temporary).string();

    UniqueFd dir(::open(dirPath.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.isValid())
        throwSystemError(fmt::format("cannot open directory {}", dirPath.string()), errno);

    // Rename is atomic only within one filesystem: the temporary file lives
    // beside the real one. A leftover (a crash before the rename, or a
    // planted symlink) is unlinked, never opened; O_EXCL then refuses
    // whatever appears there in between.
    ::unlinkat(dir.get(), temporary.c_str(), 0);
    UniqueFd file(::openat(dir.get(), temporary.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!file.isValid())
        throwSystemError(fmt::format("cannot create {}", temporaryPath), errno);
    TemporaryFile cleanup(dir.get(), temporary);

    if (exactMode && ::fchmod(file.get(), mode) != 0)
        throwSystemError(fmt::format("cannot chmod {}", temporaryPath), errno);
    std::string_view rest = contents;
    while (!rest.empty()) {
        const ssize_t written = ::write(file.get(), rest.data(), rest.size());
        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0)
            throwSystemError(fmt::format("cannot write {}", temporaryPath), errno);
        rest.remove_prefix(static_cast<std::size_t>(written));
    }
    // Without it, a filesystem with delayed allocation (ext4, xfs) may commit
    // the rename before the data and leave an empty file after a power cut.
    if (::fsync(file.get()) != 0)
        throwSystemError(fmt::format("cannot write {}", temporaryPath), errno);
    if (::close(file.release()) != 0)
        throwSystemError(fmt::format("cannot write {}", temporaryPath), errno);

    if (::renameat(dir.get(), temporary.c_str(), dir.get(), fileName.c_str()) != 0)
        throwSystemError(fmt::format("cannot rename {} to {}", temporaryPath, path.string()),
                         errno);
    cleanup.markRenamed();

    // The rename is a change to the directory: until the directory itself is
    // on disk, a crash may bring back the old file.
    if (::fsync(dir.get()) != 0)
        throwSystemError(fmt::format("cannot sync directory {}", dirPath.string()), errno);
}

} // namespace thintrim
