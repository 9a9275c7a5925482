# streamplugConfig.cmake — `find_package(streamplug REQUIRED CONFIG)` for out-of-tree plugins.
# Point CMake here without copying anything:
#   cmake -B build -Dstreamplug_DIR="$(streamplug sdk --cmake-dir)"
# (projects made by `streamplug new` ask `streamplug sdk --cmake-dir` themselves).
# Provides streamplug_add_plugin(...) and streamplug_add_node_plugin(...) (StreamplugPlugin.cmake)
# and STREAMPLUG_INCLUDE_DIR, the folder holding streamplug/plugin.h.
set(STREAMPLUG_INCLUDE_DIR "${CMAKE_CURRENT_LIST_DIR}/../native/include")
include("${CMAKE_CURRENT_LIST_DIR}/StreamplugPlugin.cmake")
set(streamplug_FOUND TRUE)
