# Included before find_package(Torch). PyTorch's CMake files fall
# back to linking CUDA::nvToolsExt when they do not find their own NVTX copy (as
# from a pip wheel), and CUDA 12.9+ ships no such library any more, only the
# header-only nvtx3 (pytorch/pytorch#152756): the link line then asks for
# "-lCUDA::nvToolsExt". Define the old name where CUDA lacks it; a no-op
# without CUDA or with a CUDA that still has the library.
find_package(CUDAToolkit QUIET)
if(CUDAToolkit_FOUND AND NOT TARGET CUDA::nvToolsExt)
  add_library(CUDA::nvToolsExt INTERFACE IMPORTED)
  if(TARGET CUDA::nvtx3)
    target_link_libraries(CUDA::nvToolsExt INTERFACE CUDA::nvtx3)
  endif()
  message(STATUS "runner: CUDA ${CUDAToolkit_VERSION} has no nvToolsExt library; CUDA::nvToolsExt stands in (header-only)")
endif()
