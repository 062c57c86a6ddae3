// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// The one place that knows which Catch2 the build uses: 2.13 (Debian 12,
// one header) or 3.x (Debian 13, Ubuntu 24.04, Fedora: a library with
// headers per part). THINTRIM_CATCH_MAJOR comes from tests/meson.build.
// Tests include this, and name string matchers and Approx as below, so
// that nothing else differs between the two.

#include <string>

#ifndef THINTRIM_CATCH_MAJOR
#error "THINTRIM_CATCH_MAJOR is set by tests/meson.build"
#endif

#if THINTRIM_CATCH_MAJOR >= 3
#include <catch2/catch_approx.hpp>
#include <catch2/catch_session.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators_all.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#else
#include <catch2/catch.hpp>
#endif

namespace thintrim::test {

#if THINTRIM_CATCH_MAJOR >= 3
using Approx = Catch::Approx;
// 3.x renamed the substring matcher; its Contains looks into ranges.
[[nodiscard]] inline auto Contains(const std::string& text) {
    return Catch::Matchers::ContainsSubstring(text);
}
#else
using Approx = Catch::Detail::Approx;
using Catch::Matchers::Contains;
#endif
using Catch::Matchers::EndsWith;
using Catch::Matchers::StartsWith;

} // namespace thintrim::test
