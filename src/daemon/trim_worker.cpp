// SPDX-License-Identifier: GPL-2.0-or-later
#include "trim_worker.h"

namespace thintrim::daemon {

TrimWorker::TrimWorker() : worker_([this](Task& task) { return perform(task); }) {}

void TrimWorker::prepare(const Mount& mount) {
    worker_.push(PrepareTask{mount});
}

void TrimWorker::trimChunk(const TrimRange& range, std::uint64_t minimumExtent) {
    worker_.push(ChunkTask{range, minimumExtent});
}

void TrimWorker::deliverTo(Engine& engine) {
    for (WorkerEvent& event : takeEvents()) {
        if (auto* prepared = std::get_if<PreparedEvent>(&event))
            engine.onPrepared(std::move(prepared->result));
        else
            engine.onChunkDone(std::get<ChunkDoneEvent>(event).result);
    }
}

void TrimWorker::release() {
    worker_.push(ReleaseTask{});
}

std::optional<WorkerEvent> TrimWorker::perform(Task& task) {
    if (auto* prepare = std::get_if<PrepareTask>(&task))
        return PreparedEvent{prepareTrim(prepare->mount, mountFd_)};
    if (auto* chunk = std::get_if<ChunkTask>(&task))
        return ChunkDoneEvent{trimChunkOn(mountFd_.get(), chunk->range, chunk->minimumExtent)};
    mountFd_ = UniqueFd{};
    return std::nullopt;
}

} // namespace thintrim::daemon
