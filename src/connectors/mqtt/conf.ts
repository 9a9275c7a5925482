/**
 * Named MQTT connection configs: `<dataDir>/etc/mqtt_source.json` (or ctx.mqttConfigs), read and
 * layered by ../named-configs.ts like every connector's named configs.
 */
import { layerNamedConfig, namedConfigFile, readNamedConfigFile } from '../named-configs.js';
import type { ConnectorContext, NamedConfigs, Props } from '../types.js';

export function mqttConfigFile(dataDir: string): string {
  return namedConfigFile(dataDir, 'mqtt');
}

export function loadNamedConfigs(ctx: ConnectorContext): NamedConfigs {
  if (ctx.mqttConfigs) return ctx.mqttConfigs;
  if (!ctx.dataDir) return {};
  return readNamedConfigFile(mqttConfigFile(ctx.dataDir));
}

/** default ← CONF_KEY entry ← the connector's own properties (unset values do not override). */
export function resolveMqttProps(props: Props, ctx: ConnectorContext, where: string): Props {
  return layerNamedConfig(props, loadNamedConfigs(ctx), where, 'etc/mqtt_source.json');
}
