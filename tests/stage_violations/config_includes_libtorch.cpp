// Must not compile: built with the config stage's guard (no LibTorch), as if a
// config file reached for a tensor. stage_boundary_refuses_* in tests/CMakeLists.txt.
#include <torch/torch.h>

int config_with_a_tensor() { return static_cast<int>(torch::ones({2}).numel()); }
