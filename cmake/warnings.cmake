# Warnings for our own targets only (link runner_warnings PRIVATE); LibTorch and
# other imported targets come in as SYSTEM includes and are not affected.
add_library(runner_warnings INTERFACE)
target_compile_options(runner_warnings INTERFACE
  -Wall                 # the common set
  -Wextra               # unused parameters, signed/unsigned comparisons
  -Wpedantic            # stay within ISO C++ so newer compilers/LibTorch keep building
  -Wshadow              # a local hiding a member is a classic source of wrong shapes
  -Wnon-virtual-dtor    # layer/module bases are deleted through base pointers
  -Woverloaded-virtual  # catches forward() overloads that hide the base one
  -Wnull-dereference
  -Wformat=2
  # GCC 12's -Wrestrict misfires inside std::string under C++20 (GCC bug 105329).
  $<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-restrict>
  $<$<BOOL:${RUNNER_WERROR}>:-Werror>
)
