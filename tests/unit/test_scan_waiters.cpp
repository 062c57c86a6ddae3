// SPDX-License-Identifier: GPL-2.0-or-later
// Calls waiting for a fresh scan, with a deadline (src/core/service/scan_waiters.h).
#include "catch.h"
#include "service/scan_waiters.h"

#include <chrono>
#include <string>
#include <vector>

using namespace thintrim;
using namespace std::chrono_literals;

namespace {

struct Scan {
    std::string name;
};

// The waiters with the timer they would arm, and what each was answered.
struct Fixture {
    std::vector<std::optional<Microseconds>> armed;
    std::vector<std::string> answers; // "waiter:scan" or "waiter:none"
    ScanWaiters<Scan> waiters{5s, [this](std::optional<Microseconds> at) { armed.push_back(at); }};

    ScanWaiters<Scan>::Then recordAs(std::string waiter) {
        return [this, waiter](const Scan* scan) {
            answers.push_back(waiter + ":" + (scan != nullptr ? scan->name : "none"));
        };
    }
};

} // namespace

TEST_CASE("a waiter is answered by the first scan that began after its request") {
    Fixture f;
    f.waiters.add(1, 10s, f.recordAs("trim"));
    CHECK(f.armed.back() == Microseconds{15s});
    f.waiters.add(2, 11s, f.recordAs("verify"));
    CHECK(f.armed.back() == Microseconds{15s}); // the earliest deadline

    f.waiters.answer(1, Scan{"first"});
    CHECK(f.answers == std::vector<std::string>{"trim:first"});
    CHECK(f.armed.back() == Microseconds{16s});
    CHECK(f.waiters.size() == 1);

    f.waiters.answer(2, Scan{"second"});
    CHECK(f.answers == std::vector<std::string>{"trim:first", "verify:second"});
    CHECK(f.armed.back() == std::nullopt); // nothing left to wait for
}

TEST_CASE("a scan answers every request up to its number at once") {
    Fixture f;
    f.waiters.add(1, 0s, f.recordAs("a"));
    f.waiters.add(2, 0s, f.recordAs("b"));
    f.waiters.add(3, 0s, f.recordAs("c"));
    f.waiters.answer(2, Scan{"merged"});
    CHECK(f.answers == std::vector<std::string>{"a:merged", "b:merged"});
    CHECK(f.waiters.size() == 1);
}

TEST_CASE("a scan stuck on a hung device: the overdue waiters go on without it") {
    Fixture f;
    f.waiters.add(1, 10s, f.recordAs("early"));
    f.waiters.add(2, 12s, f.recordAs("late"));
    f.waiters.expire(15s);
    CHECK(f.answers == std::vector<std::string>{"early:none"});
    CHECK(f.armed.back() == Microseconds{17s});
    f.waiters.expire(16s); // a timer firing early answers nobody
    CHECK(f.answers.size() == 1);
    f.waiters.expire(17s);
    CHECK(f.answers == std::vector<std::string>{"early:none", "late:none"});
    CHECK(f.armed.back() == std::nullopt);
}

TEST_CASE("stopping answers every waiter, with no scan") {
    Fixture f;
    f.waiters.add(1, 10s, f.recordAs("a"));
    f.waiters.add(2, 10s, f.recordAs("b"));
    f.waiters.abandonAll();
    CHECK(f.answers == std::vector<std::string>{"a:none", "b:none"});
    CHECK(f.waiters.size() == 0);
    CHECK(f.armed.back() == std::nullopt);
}

TEST_CASE("a waiter may wait again from its answer") {
    Fixture f;
    f.waiters.add(1, 10s, [&f](const Scan*) { f.waiters.add(2, 20s, f.recordAs("again")); });
    f.waiters.answer(1, Scan{"first"});
    CHECK(f.waiters.size() == 1);
    CHECK(f.armed.back() == Microseconds{25s});
    f.waiters.answer(2, Scan{"second"});
    CHECK(f.answers == std::vector<std::string>{"again:second"});
}
