# -Werror: RUNNER_WERROR (CMakeLists.txt) ON, OFF, or AUTO for the compilers and
# LibTorch releases CI builds with; needs Torch_VERSION, so include after find_package(Torch).
string(REGEX MATCH "^[0-9]+" runner_cxx_major "${CMAKE_CXX_COMPILER_VERSION}")
set(runner_ci_compilers GNU-12 GNU-14 Clang-14)
if(RUNNER_WERROR STREQUAL "AUTO")
  if("${CMAKE_CXX_COMPILER_ID}-${runner_cxx_major}" IN_LIST runner_ci_compilers AND Torch_VERSION MATCHES "^(1\\.13|2\\.6)\\.")
    set(RUNNER_WARNINGS_AS_ERRORS ON)
  else()
    set(RUNNER_WARNINGS_AS_ERRORS OFF)
    message(STATUS "runner: warnings are not errors with ${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION} and "
                   "LibTorch ${Torch_VERSION} (CI's are GCC 12/14, clang 14, LibTorch 1.13/2.6; -DRUNNER_WERROR=ON forces it)")
  endif()
elseif(RUNNER_WERROR)
  set(RUNNER_WARNINGS_AS_ERRORS ON)
else()
  set(RUNNER_WARNINGS_AS_ERRORS OFF)
endif()
message(STATUS "runner: warnings as errors: ${RUNNER_WARNINGS_AS_ERRORS}")

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
  $<$<BOOL:${RUNNER_WARNINGS_AS_ERRORS}>:-Werror>
)
