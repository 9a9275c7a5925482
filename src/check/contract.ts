/**
 * The plugin contract this host implements: mirrors STREAMPLUG_CONTRACT_MAJOR / _MINOR in
 * native/include/streamplug/plugin.h (a test keeps the two equal).
 */
export const HOST_CONTRACT = { major: 1, minor: 1 } as const;

/** The entry point a plugin of contract major N exports. */
export const entryName = (major: number): string => `streamplug_plugin_v${major}`;
