// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "event_loop.h"
#include "unique_fd.h"

#include <filesystem>
#include <functional>
#include <memory>

struct libmnt_monitor;

namespace thintrim::daemon {

// Calls `onChange` on the loop thread after the mount table changed, so the
// daemon re-reads it. Event-driven either way, no polling:
// - the kernel's table (/proc/self/mountinfo): libmount's monitor, whose fd
//   becomes readable on every mount, unmount and remount;
// - a mount table file given with --mountinfo (tests): inotify on its
//   directory, firing when the file is rewritten in place (IN_CLOSE_WRITE) or
//   replaced by a rename (IN_MOVED_TO).
class MountWatch {
public:
    MountWatch(EventLoop& loop, const std::filesystem::path& mountinfo,
               std::function<void()> onChange);
    ~MountWatch();
    MountWatch(const MountWatch&) = delete;
    MountWatch& operator=(const MountWatch&) = delete;

private:
    void onReadable();

    EventLoop& loop_;
    std::function<void()> onChange_;
    struct MonitorUnref {
        void operator()(libmnt_monitor* monitor) const;
    };
    std::unique_ptr<libmnt_monitor, MonitorUnref> monitor_; // the kernel's table
    UniqueFd inotify_;                                      // a file
    std::string fileName_;
    int fd_ = -1; // the one being polled
};

} // namespace thintrim::daemon
