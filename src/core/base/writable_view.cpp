// SPDX-License-Identifier: GPL-2.0-or-later
#include "base/writable_view.h"

#include "base/error.h"

#include <cerrno>

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace thintrim {

UniqueFd openWritableView(int mountRootFd) {
    // glibc 2.36 has wrappers, but <sys/mount.h> clashes with <linux/mount.h>
    // there; the raw calls need neither.
    UniqueFd tree{static_cast<int>(::syscall(SYS_open_tree, mountRootFd, "",
                                             OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH))};
    if (!tree.isValid())
        throwSystemError("open_tree (a private copy of the mount)", errno);
    mount_attr attributes{};
    attributes.attr_clr = MOUNT_ATTR_RDONLY;
    if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH, &attributes,
                  sizeof attributes) != 0)
        throwSystemError("mount_setattr (making the private copy writable)", errno);
    // open_tree() gives an O_PATH descriptor, on which ioctl() fails.
    UniqueFd root{::openat(tree.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (!root.isValid())
        throwSystemError("open the private copy of the mount", errno);
    return root;
}

} // namespace thintrim
