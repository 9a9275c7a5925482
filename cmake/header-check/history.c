/* Every released header still compiles as strict C99: plugins keep being built against them. One
 * translation unit per header (they share the include guard): HISTORY_HEADER names it. */
#include HISTORY_HEADER

int streamplug_header_check_history(const sp_plugin_descriptor *d);
int streamplug_header_check_history(const sp_plugin_descriptor *d) {
  return d->contract_major == STREAMPLUG_CONTRACT_MAJOR;
}
