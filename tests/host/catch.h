// SPDX-License-Identifier: GPL-2.0-or-later
// The one place the host tests name Catch2's header: switch it here (or to
// the shim tests/unit/ gets) when the project moves to Catch2 3.
#pragma once
#include <catch2/catch.hpp>
