# One library per stage (runner/<stage>/ and layers/), each linking only what
# that stage may use. Two guards make the boundaries hold by themselves:
#  - FORBID libtorch|sqlite forces cmake/forbid/<name>.h in front of each of the
#    stage's sources. LibTorch's and SQLite's headers sit in /usr/include on
#    Debian, visible to every target, so leaving a library out of
#    target_link_libraries alone would not stop an #include; poisoned
#    identifiers do (the stage_boundary_refuses_* tests in tests/CMakeLists.txt).
#  - USES names the stages whose headers it may include. At configure time
#    runner_check_stage_includes refuses an #include of one of our headers that
#    belongs to a stage outside that list, naming the file and the line.

set(RUNNER_STAGE_NAMES "" CACHE INTERNAL "")

# runner_stage(NAME n [OBJECT] [SOURCES …] [HEADERS …] [CHECKED …] [USES stage…] [LINKS target…]
#              [FORBID libtorch|sqlite…] [PCH header…])
# No SOURCES: a header-only INTERFACE library. CHECKED: the stage's other files,
# whose includes are checked too: sources this configuration leaves out (a
# feature switched off) and the executable's main.cpp. Paths are relative to
# the project. PCH: headers to precompile (with RUNNER_PCH), LibTorch's for the
# stages that include it in many files.
function(runner_stage)
  cmake_parse_arguments(S "OBJECT" "NAME" "SOURCES;HEADERS;CHECKED;USES;LINKS;FORBID;PCH" ${ARGN})
  set(target runner_${S_NAME})
  set(deps)
  foreach(use ${S_USES})
    list(APPEND deps runner_${use})
  endforeach()
  if(NOT S_SOURCES)
    add_library(${target} INTERFACE)
    target_link_libraries(${target} INTERFACE ${deps} ${S_LINKS})
  else()
    set(kind STATIC)
    if(S_OBJECT)
      set(kind OBJECT)  # self-registering files (layers): every object must reach the executable
    endif()
    add_library(${target} ${kind} ${S_SOURCES})
    target_link_libraries(${target} PUBLIC ${deps} ${S_LINKS} PRIVATE runner_warnings)
    set(guards)
    foreach(forbidden ${S_FORBID})
      list(APPEND guards ${PROJECT_SOURCE_DIR}/cmake/forbid/${forbidden}.h)
    endforeach()
    if(S_PCH AND RUNNER_PCH)
      # GCC uses a precompiled header only when nothing comes before it, so the
      # guards go into it, after the precompiled headers (which never name a
      # forbidden library: PCH is only given where the guard allows it). Stages
      # with the same headers and guards share the first one's PCH.
      string(MAKE_C_IDENTIFIER "${S_PCH};${S_FORBID}" pch_key)
      get_property(first GLOBAL PROPERTY RUNNER_PCH_${pch_key})
      if(first)
        target_precompile_headers(${target} REUSE_FROM ${first})
      else()
        target_precompile_headers(${target} PRIVATE ${S_PCH} ${guards})
        set_property(GLOBAL PROPERTY RUNNER_PCH_${pch_key} ${target})
      endif()
    else()
      foreach(guard ${guards})
        target_compile_options(${target} PRIVATE "SHELL:-include ${guard}")
      endforeach()
    endif()
  endif()
  set_property(GLOBAL PROPERTY RUNNER_STAGE_${S_NAME}_FILES ${S_SOURCES} ${S_HEADERS} ${S_CHECKED})
  set_property(GLOBAL PROPERTY RUNNER_STAGE_${S_NAME}_HEADERS ${S_HEADERS})
  set_property(GLOBAL PROPERTY RUNNER_STAGE_${S_NAME}_USES ${S_USES})
  set(RUNNER_STAGE_NAMES ${RUNNER_STAGE_NAMES} ${S_NAME} CACHE INTERNAL "")
endfunction()

# Each #include "runner/…" or "layers/…" in a stage's files must name a header of
# the stage itself or of one it USES. Also refuses a header or source under
# runner/ or layers/ that no stage owns, so no file escapes the check.
function(runner_check_stage_includes)
  foreach(name ${RUNNER_STAGE_NAMES})
    get_property(headers GLOBAL PROPERTY RUNNER_STAGE_${name}_HEADERS)
    foreach(h ${headers})
      set(owner_${h} ${name})
    endforeach()
  endforeach()
  set(problems)
  set(owned)
  foreach(name ${RUNNER_STAGE_NAMES})
    get_property(files GLOBAL PROPERTY RUNNER_STAGE_${name}_FILES)
    get_property(uses GLOBAL PROPERTY RUNNER_STAGE_${name}_USES)
    list(APPEND owned ${files})
    foreach(file ${files})
      file(STRINGS ${PROJECT_SOURCE_DIR}/${file} lines REGEX "^#include \"(runner|layers)/")
      foreach(line ${lines})
        string(REGEX REPLACE "^#include \"([^\"]+)\".*" "\\1" header "${line}")
        set(owner "${owner_${header}}")
        if(owner STREQUAL "")
          list(APPEND problems "${file}: ${line}: no stage owns ${header}")
        elseif(NOT owner STREQUAL name AND NOT owner IN_LIST uses)
          string(REPLACE ";" ", " uses_text "${uses}")
          list(APPEND problems "${file}: ${line}: ${header} belongs to the ${owner} stage; the ${name} stage uses only: ${uses_text}")
        endif()
      endforeach()
    endforeach()
  endforeach()
  file(GLOB_RECURSE all RELATIVE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/runner/*.cpp ${PROJECT_SOURCE_DIR}/runner/*.h
       ${PROJECT_SOURCE_DIR}/layers/*.cpp ${PROJECT_SOURCE_DIR}/layers/*.h)
  foreach(file ${all})
    if(NOT file IN_LIST owned)
      list(APPEND problems "${file}: in no stage (add it to one in CMakeLists.txt)")
    endif()
  endforeach()
  if(problems)
    string(REPLACE ";" "\n  " text "${problems}")
    message(FATAL_ERROR "stage boundaries (cmake/stages.cmake):\n  ${text}")
  endif()
endfunction()
