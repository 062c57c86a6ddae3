// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/unique_fd.h"

namespace thintrim {

// Some filesystems (f2fs) take FITRIM only through a writable mount: their
// ioctl asks for write access to the mount (mnt_want_write_file) and fails
// with EROFS on a read-only one. Under systemd's ProtectSystem=strict every
// mount the daemon saw at start is a read-only view of a read-write
// filesystem. This makes a private, detached copy of the mount `mountRootFd`
// is the root of (open_tree(OPEN_TREE_CLONE)), clears the copy's read-only
// flag (mount_setattr) and returns an O_RDONLY descriptor of its root. The
// copy is attached nowhere, so no path anywhere becomes writable; it goes
// away with the descriptor. The filesystem's own read-only state (an ro
// superblock) is untouched: FITRIM still fails on that.
//
// Needs CAP_SYS_ADMIN and the open_tree and mount_setattr system calls
// (Linux 5.12). Throws Error(Failed) naming the call that failed.
[[nodiscard]] UniqueFd openWritableView(int mountRootFd);

} // namespace thintrim
