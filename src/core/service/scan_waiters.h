// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "base/units.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

namespace thintrim {

// Calls that wait for a fresh scan of the mounts (a Trim, Verify or Diagnose
// deserves today's verdicts), each with a deadline: a scan stuck on a hung
// device, or the daemon stopping, answers them with nullptr, and the caller
// goes on with what it has. Scans are numbered by the request they answer
// (MountScanner::request()); a scan answers every request up to its number.
// The owner supplies the timer: `armTimer` is told the earliest deadline
// whenever it changes (nullopt: none left), and expire() is called when it
// fires. Times are CLOCK_BOOTTIME.
template <typename Scan>
class ScanWaiters {
public:
    using Then = std::function<void(const Scan* scan)>;
    using ArmTimer = std::function<void(std::optional<Microseconds> deadline)>;

    ScanWaiters(Microseconds patience, ArmTimer armTimer)
        : patience_(patience), armTimer_(std::move(armTimer)) {}

    // How long a waiter waits at most.
    [[nodiscard]] Microseconds patience() const { return patience_; }
    [[nodiscard]] std::size_t size() const { return waiting_.size(); }

    // `then` waits for the scan that answers request number `request`, until
    // `now` + patience().
    void add(std::uint64_t request, Microseconds now, Then then) {
        waiting_.push_back({request, now + patience_, std::move(then)});
        armTimer_(waiting_.front().deadline);
    }
    // `scan`, which answers every request up to `answers`, has been applied:
    // its waiters run with it.
    void answer(std::uint64_t answers, const Scan& scan) {
        run([answers](const Waiter& waiter) { return waiter.request <= answers; }, &scan);
    }
    // The timer fired at `now`: the waiters whose deadline passed run with
    // nullptr.
    void expire(Microseconds now) {
        run([now](const Waiter& waiter) { return waiter.deadline <= now; }, nullptr);
    }
    // Stopping: no call waits for a scan the stop would leave unanswered.
    void abandonAll() {
        run([](const Waiter&) { return true; }, nullptr);
    }

private:
    struct Waiter {
        std::uint64_t request = 0;
        Microseconds deadline{0};
        Then then;
    };

    // Takes the waiters `due` picks, re-arms the timer for the others, then
    // runs them (a waiter may add another).
    void run(const std::function<bool(const Waiter&)>& due, const Scan* scan) {
        std::vector<Waiter> ready;
        std::vector<Waiter> waiting;
        for (Waiter& waiter : waiting_)
            (due(waiter) ? ready : waiting).push_back(std::move(waiter));
        waiting_ = std::move(waiting);
        // Deadlines grow with the requests: the front one is the earliest.
        armTimer_(waiting_.empty() ? std::nullopt : std::optional(waiting_.front().deadline));
        for (Waiter& waiter : ready)
            waiter.then(scan);
    }

    Microseconds patience_;
    ArmTimer armTimer_;
    std::vector<Waiter> waiting_;
};

} // namespace thintrim
