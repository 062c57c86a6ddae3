// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <filesystem>
#include <string_view>

#include <sys/types.h>

namespace thintrim {

// Replaces `path` with `contents` so that a reader, or the next boot after a
// power cut, sees the old file or the new one, never a mix: the text goes to
// `temporaryName` next to it (removed first if a crash left it; created with
// O_CREAT|O_EXCL|O_NOFOLLOW, so a symlink planted there is never followed),
// is fsynced, renamed over `path`, and the directory is fsynced. On failure
// the temporary file is removed and Error(Failed) names the file and why.
//
// `mode` is given to open() (the umask applies) unless `exactMode`, which
// sets it with fchmod(): the metrics file must stay world-readable under the
// unit's UMask=0077.
void writeFileAtomically(const std::filesystem::path& path, std::string_view temporaryName,
                         std::string_view contents, mode_t mode, bool exactMode = false);

} // namespace thintrim
