// SPDX-License-Identifier: GPL-2.0-or-later
#include "verify_worker.h"

namespace thintrim::daemon {

VerifyWorker::VerifyWorker(SystemPaths paths)
    : paths_(std::move(paths)), dmReader_(systemDmReader(paths_)),
      worker_([this](Request& request) { return perform(request); }) {}

std::uint64_t VerifyWorker::start(std::vector<VerifyTarget> targets) {
    const std::uint64_t id = nextRequest_++;
    worker_.push({id, std::move(targets)});
    return id;
}

std::optional<VerifyDone> VerifyWorker::perform(Request& request) {
    VerifyDone done{request.id, {}};
    for (VerifyTarget& target : request.targets) {
        VerifyReport report = verifyFilesystem(paths_, target.mount,
                                               target.stack ? &*target.stack : nullptr, dmReader_);
        done.outcomes.push_back({std::move(target.mount), std::move(report)});
    }
    return done;
}

} // namespace thintrim::daemon
