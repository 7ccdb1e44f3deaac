// Include this instead of <doctest/doctest.h> in tests that use LibTorch:
// LibTorch pulls in glog, whose CHECK/CHECK_EQ/... macros collide with doctest's.
#pragma once
#include <torch/torch.h>

#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LT
#undef CHECK_LE
#undef CHECK_GT
#undef CHECK_GE
#include <doctest/doctest.h>
