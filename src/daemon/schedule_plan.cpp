// SPDX-License-Identifier: GPL-2.0-or-later
#include "schedule_plan.h"

#include <algorithm>

namespace thintrim::daemon {

SchedulePlan planSchedule(const ScheduleInput& input) {
    SchedulePlan plan;
    if (input.suspended) {
        for (const ScheduledFilesystem& filesystem : input.filesystems)
            plan.nextTrim[filesystem.mountPoint] = Microseconds{0};
        return plan;
    }

    auto wakeNoLaterThan = [&plan](Microseconds at) {
        plan.wakeAt = plan.wakeAt ? std::min(*plan.wakeAt, at) : at;
    };
    const NextDue due =
        nextDue(input.config, input.machineKey, input.filesystems, false, input.now);
    for (const DueFilesystem& filesystem : due.dueNow) {
        if (!input.alreadyQueued.contains(filesystem.mountPoint))
            plan.toQueue.push_back(filesystem);
    }
    for (const ScheduledFilesystem& filesystem : input.filesystems) {
        const DueTime when = dueTime(input.config, input.machineKey, filesystem, input.now);
        const bool dueNow =
            std::any_of(due.dueNow.begin(), due.dueNow.end(), [&](const DueFilesystem& d) {
                return d.mountPoint == filesystem.mountPoint;
            });
        plan.nextTrim[filesystem.mountPoint] = dueNow ? input.now.realtime : when.at;
        // A queued filesystem is looked at again when its trim ends; one due
        // now is being queued by this plan.
        if (!dueNow && !input.alreadyQueued.contains(filesystem.mountPoint))
            wakeNoLaterThan(std::max(when.at, input.now.realtime));
    }
    return plan;
}

} // namespace thintrim::daemon
