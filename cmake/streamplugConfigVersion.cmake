# The version find_package(streamplug <version>) compares with: the contract major.minor this
# SDK's plugin.h speaks, read from the header itself (one place). Same major, minor not newer.
file(STRINGS "${CMAKE_CURRENT_LIST_DIR}/../native/include/streamplug/plugin.h" _sp_contract
     REGEX "^#define STREAMPLUG_CONTRACT_M(AJOR|INOR) [0-9]+")
string(REGEX REPLACE ".*MAJOR ([0-9]+).*" "\\1" _sp_major "${_sp_contract}")
string(REGEX REPLACE ".*MINOR ([0-9]+).*" "\\1" _sp_minor "${_sp_contract}")
set(PACKAGE_VERSION "${_sp_major}.${_sp_minor}")
if(PACKAGE_FIND_VERSION_MAJOR AND NOT PACKAGE_FIND_VERSION_MAJOR EQUAL _sp_major)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
