// loopctl: remove or re-create a loop device through /dev/loop-control.
//
//   loopctl remove N   LOOP_CTL_REMOVE: delete /dev/loopN (must be detached)
//   loopctl add N      LOOP_CTL_ADD:    create /dev/loopN with fresh defaults
//
// The loop-device tests need this because a loop device's queue limits set
// through sysfs (e.g. discard_max_bytes = 0) survive `losetup -d`; only
// removing and re-adding the device restores the kernel defaults.
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace {

constexpr const char* control_path = "/dev/loop-control";

int usage() {
    std::fputs("usage: loopctl remove N | loopctl add N\n"
               "  remove N  delete the (detached) loop device /dev/loopN\n"
               "  add N     create /dev/loopN\n",
               stderr);
    return 2;
}

const char* hint(int err, bool remove) {
    switch (err) {
    case EBUSY:
        return remove ? " (the device is still attached or open; detach it with losetup -d first)"
                      : "";
    case EEXIST:
        return " (the device already exists)";
    case ENODEV:
    case ENXIO:
        return remove ? " (no such loop device)" : "";
    case EPERM:
    case EACCES:
        return " (root is required)";
    default:
        return "";
    }
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 3)
        return usage();
    const std::string_view verb = argv[1];
    const std::string_view num = argv[2];
    bool remove = false;
    if (verb == "remove")
        remove = true;
    else if (verb != "add")
        return usage();

    long index = -1;
    const auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), index);
    if (ec != std::errc{} || end != num.data() + num.size() || index < 0 || index > (1L << 20)) {
        std::fprintf(stderr, "loopctl: invalid loop device number '%s'\n", argv[2]);
        return 2;
    }

    const int fd = ::open(control_path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        std::fprintf(stderr, "loopctl: cannot open %s: %s%s\n", control_path, std::strerror(err),
                     hint(err, remove));
        return 1;
    }
    const unsigned long request = remove ? LOOP_CTL_REMOVE : LOOP_CTL_ADD;
    const int rc = ::ioctl(fd, request, index);
    const int err = errno;
    ::close(fd);
    if (rc < 0) {
        std::fprintf(stderr, "loopctl: %s /dev/loop%ld failed: %s%s\n",
                     remove ? "LOOP_CTL_REMOVE of" : "LOOP_CTL_ADD of", index, std::strerror(err),
                     hint(err, remove));
        return 1;
    }
    return 0;
}
