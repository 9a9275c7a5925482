# StreamplugPlugin.cmake — build streamplug native plugins with CMake.
#
# Copy this file and native/include/streamplug/plugin.h into your project, then:
#
#   cmake_minimum_required(VERSION 3.16)
#   project(myplugin C CXX)
#   set(STREAMPLUG_INCLUDE_DIR ${CMAKE_CURRENT_SOURCE_DIR}/include)   # where streamplug/plugin.h is
#   include(cmake/StreamplugPlugin.cmake)
#   streamplug_add_plugin(NAME myplugin SOURCES src/myplugin.c)
#
# Private libraries the plugin links go into its zip under lib/ (`streamplug pack` takes --lib);
# the plugin is linked with RUNPATH $ORIGIN/lib so it finds them where install puts them.
#
# The result is `myplugin.so`: no `lib` prefix, hidden visibility (only the entry point and
# symbols marked SP_EXPORT are exported), warnings as errors, and nothing of Node linked in, so the
# same file loads under every Node version whose streamplug host speaks contract 1.
#
# Variables read:
#   STREAMPLUG_INCLUDE_DIR        folder holding streamplug/plugin.h
#                                 (default: ../native/include next to this file, as in the repo)
#   STREAMPLUG_PLUGIN_OUTPUT_DIR  where NAME.so goes (default: ${CMAKE_BINARY_DIR}/plugins)

include_guard(GLOBAL)

if(NOT DEFINED STREAMPLUG_INCLUDE_DIR)
  set(STREAMPLUG_INCLUDE_DIR "${CMAKE_CURRENT_LIST_DIR}/../native/include")
endif()
get_filename_component(STREAMPLUG_INCLUDE_DIR "${STREAMPLUG_INCLUDE_DIR}" ABSOLUTE)
if(NOT EXISTS "${STREAMPLUG_INCLUDE_DIR}/streamplug/plugin.h")
  message(FATAL_ERROR
    "streamplug/plugin.h not found under STREAMPLUG_INCLUDE_DIR=${STREAMPLUG_INCLUDE_DIR}; "
    "set STREAMPLUG_INCLUDE_DIR to the folder that contains streamplug/plugin.h.")
endif()

if(NOT DEFINED STREAMPLUG_PLUGIN_OUTPUT_DIR)
  set(STREAMPLUG_PLUGIN_OUTPUT_DIR "${CMAKE_BINARY_DIR}/plugins")
endif()

# Warnings are errors for plugins: a plugin runs inside the host, sloppiness there crashes it.
set(STREAMPLUG_C_WARNINGS -Wall -Wextra -Werror)
set(STREAMPLUG_CXX_WARNINGS -Wall -Wextra -Werror)

include(CheckCXXCompilerFlag)
# GCC marks some C++ statics STB_GNU_UNIQUE, which makes dlclose a no-op; hidden visibility avoids
# most of it and -fno-gnu-unique the rest (GCC only).
check_cxx_compiler_flag(-fno-gnu-unique STREAMPLUG_HAVE_NO_GNU_UNIQUE)

# streamplug_add_plugin(NAME <name> SOURCES <file>... [OUTPUT_DIR <dir>])
function(streamplug_add_plugin)
  cmake_parse_arguments(SP "" "NAME;OUTPUT_DIR" "SOURCES" ${ARGN})
  if(NOT SP_NAME)
    message(FATAL_ERROR "streamplug_add_plugin: NAME is required, e.g. streamplug_add_plugin(NAME echo SOURCES echo.c)")
  endif()
  if(NOT SP_SOURCES)
    message(FATAL_ERROR "streamplug_add_plugin(${SP_NAME}): SOURCES is required")
  endif()
  if(NOT SP_NAME MATCHES "^[A-Za-z0-9_-]+$")
    message(FATAL_ERROR "streamplug_add_plugin: NAME '${SP_NAME}' must match ^[A-Za-z0-9_-]+$")
  endif()
  if(NOT SP_OUTPUT_DIR)
    set(SP_OUTPUT_DIR "${STREAMPLUG_PLUGIN_OUTPUT_DIR}")
  endif()

  add_library(${SP_NAME} SHARED ${SP_SOURCES})
  target_include_directories(${SP_NAME} PRIVATE "${STREAMPLUG_INCLUDE_DIR}")
  set_target_properties(${SP_NAME} PROPERTIES
    PREFIX ""
    SUFFIX ".so"
    OUTPUT_NAME "${SP_NAME}"
    LIBRARY_OUTPUT_DIRECTORY "${SP_OUTPUT_DIR}"
    # Multi-config generators append the configuration; keep one place.
    LIBRARY_OUTPUT_DIRECTORY_DEBUG "${SP_OUTPUT_DIR}"
    LIBRARY_OUTPUT_DIRECTORY_RELEASE "${SP_OUTPUT_DIR}"
    POSITION_INDEPENDENT_CODE ON
    C_STANDARD 99
    C_STANDARD_REQUIRED ON
    C_EXTENSIONS OFF
    CXX_STANDARD 17
    CXX_STANDARD_REQUIRED ON
    CXX_EXTENSIONS OFF
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  # Debug builds check column types in the sp_col_* accessors of plugin.h.
  target_compile_definitions(${SP_NAME} PRIVATE $<$<CONFIG:Debug>:STREAMPLUG_DEBUG>)
  target_compile_options(${SP_NAME} PRIVATE
    $<$<COMPILE_LANGUAGE:C>:${STREAMPLUG_C_WARNINGS}>
    $<$<COMPILE_LANGUAGE:CXX>:${STREAMPLUG_CXX_WARNINGS}>)
  if(STREAMPLUG_HAVE_NO_GNU_UNIQUE)
    target_compile_options(${SP_NAME} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fno-gnu-unique>)
  endif()
  # Unwind tables in C code too: hooks must not throw (plugin.h), but if a C++ callee of a C hook
  # does, the exception can then cross the C frames to the host's last-resort catch instead of
  # ending in std::terminate.
  target_compile_options(${SP_NAME} PRIVATE $<$<COMPILE_LANGUAGE:C>:-fexceptions>)
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    # Every symbol must resolve against the plugin's own libraries: a plugin links nothing of the host.
    # --as-needed: record only the libraries the plugin really uses (fewer things to be missing).
    target_link_options(${SP_NAME} PRIVATE "LINKER:--no-undefined" "LINKER:--as-needed")
    # Private dependencies ship in the plugin zip under lib/ and are installed beside the plugin:
    # RUNPATH $ORIGIN/lib finds them there, wherever the data directory is. --enable-new-dtags
    # makes it a RUNPATH (searched after LD_LIBRARY_PATH), not the deprecated RPATH.
    set_target_properties(${SP_NAME} PROPERTIES
      BUILD_RPATH "\$ORIGIN/lib"
      INSTALL_RPATH "\$ORIGIN/lib"
      BUILD_RPATH_USE_ORIGIN ON)
    target_link_options(${SP_NAME} PRIVATE "LINKER:--enable-new-dtags")
  endif()
endfunction()

# streamplug_add_node_plugin(NAME <name> SOURCES <file>... [OUTPUT_DIR <dir>])
# A `.node` plugin: a Node-API addon (NAPI_VERSION 8, so one build loads in every Node from 18 on).
# Configure through cmake-js, which provides CMAKE_JS_INC / CMAKE_JS_SRC / CMAKE_JS_LIB.
function(streamplug_add_node_plugin)
  cmake_parse_arguments(SP "" "NAME;OUTPUT_DIR" "SOURCES" ${ARGN})
  if(NOT SP_NAME OR NOT SP_SOURCES)
    message(FATAL_ERROR "streamplug_add_node_plugin: NAME and SOURCES are required")
  endif()
  if(NOT CMAKE_JS_INC)
    message(FATAL_ERROR "streamplug_add_node_plugin(${SP_NAME}): configure through cmake-js, which provides the Node-API headers")
  endif()
  if(NOT SP_OUTPUT_DIR)
    set(SP_OUTPUT_DIR "${STREAMPLUG_PLUGIN_OUTPUT_DIR}")
  endif()
  add_library(${SP_NAME} SHARED ${SP_SOURCES} ${CMAKE_JS_SRC})
  target_include_directories(${SP_NAME} PRIVATE ${CMAKE_JS_INC} "${STREAMPLUG_INCLUDE_DIR}")
  target_compile_definitions(${SP_NAME} PRIVATE NAPI_VERSION=8 BUILDING_NODE_EXTENSION)
  target_link_libraries(${SP_NAME} PRIVATE ${CMAKE_JS_LIB})
  set_target_properties(${SP_NAME} PROPERTIES
    PREFIX ""
    SUFFIX ".node"
    LIBRARY_OUTPUT_DIRECTORY "${SP_OUTPUT_DIR}"
    LIBRARY_OUTPUT_DIRECTORY_DEBUG "${SP_OUTPUT_DIR}"
    LIBRARY_OUTPUT_DIRECTORY_RELEASE "${SP_OUTPUT_DIR}"
    POSITION_INDEPENDENT_CODE ON
    C_STANDARD 99
    C_STANDARD_REQUIRED ON
    C_VISIBILITY_PRESET hidden)
  target_compile_options(${SP_NAME} PRIVATE -Wall -Wextra -Werror)
endfunction()
