// SPDX-License-Identifier: GPL-2.0-or-later
#include "mount_watch.h"

#include "error.h"

#include <array>
#include <cerrno>
#include <cstring>

#include <libmount/libmount.h>
#include <sys/inotify.h>

namespace thintrim::daemon {

namespace {

bool isKernelTable(const std::filesystem::path& mountinfo) {
    return mountinfo == "/proc/self/mountinfo" || mountinfo == "/proc/mounts" ||
           mountinfo == "/proc/self/mounts";
}

} // namespace

void MountWatch::MonitorUnref::operator()(libmnt_monitor* monitor) const {
    mnt_unref_monitor(monitor);
}

MountWatch::MountWatch(EventLoop& loop, const std::filesystem::path& mountinfo,
                       std::function<void()> onChange)
    : loop_(loop), onChange_(std::move(onChange)) {
    if (isKernelTable(mountinfo)) {
        monitor_.reset(mnt_new_monitor());
        if (!monitor_)
            throwSystemError("mnt_new_monitor", ENOMEM);
        if (int r = mnt_monitor_enable_kernel(monitor_.get(), 1); r < 0)
            throwSystemError("mnt_monitor_enable_kernel", -r);
        fd_ = mnt_monitor_get_fd(monitor_.get());
        if (fd_ < 0)
            throwSystemError("mnt_monitor_get_fd", -fd_);
    } else {
        inotify_.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
        if (!inotify_.isValid())
            throwSystemError("inotify_init1", errno);
        const std::filesystem::path directory =
            mountinfo.has_parent_path() ? mountinfo.parent_path() : std::filesystem::path(".");
        fileName_ = mountinfo.filename();
        if (::inotify_add_watch(inotify_.get(), directory.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) <
            0)
            throwSystemError("inotify_add_watch " + directory.string(), errno);
        fd_ = inotify_.get();
    }
    loop_.watch(fd_, [this] { onReadable(); });
}

MountWatch::~MountWatch() {
    loop_.unwatch(fd_);
}

void MountWatch::onReadable() {
    bool changed = false;
    if (monitor_) {
        // Drain every pending change; one re-read covers them all.
        const char* filename = nullptr;
        int type = 0;
        while (mnt_monitor_next_change(monitor_.get(), &filename, &type) == 0)
            changed = true;
    } else {
        alignas(inotify_event) std::array<char, 4096> buffer{};
        for (;;) {
            const ssize_t length = ::read(inotify_.get(), buffer.data(), buffer.size());
            if (length <= 0)
                break;
            for (ssize_t offset = 0; offset < length;) {
                inotify_event event{};
                std::memcpy(&event, buffer.data() + offset, sizeof event);
                const char* name = buffer.data() + offset + sizeof(inotify_event);
                if (event.len > 0 && fileName_ == name)
                    changed = true;
                offset += static_cast<ssize_t>(sizeof(inotify_event) + event.len);
            }
        }
    }
    if (changed)
        onChange_();
}

} // namespace thintrim::daemon
