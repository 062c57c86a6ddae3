// SPDX-License-Identifier: GPL-2.0-or-later
#if THINTRIM_CATCH_MAJOR < 3
#define CATCH_CONFIG_RUNNER
#endif
#include "catch.h"

int main(int argc, char* argv[]) {
    return Catch::Session().run(argc, argv);
}
