/**
 * Named NATS connection configs: `<dataDir>/etc/nats_source.json`, read and layered exactly like
 * mqtt_source.json (../named-configs.ts). Keys: server, stream, durable, queue and the options in
 * options.ts. The NATS sink reads the same file.
 */
import { layerNamedConfig, namedConfigFile, readNamedConfigFile } from '../named-configs.js';
import type { ConnectorContext, Props } from '../types.js';

export function natsConfigFile(dataDir: string): string {
  return namedConfigFile(dataDir, 'nats');
}

/** default ← CONF_KEY entry ← the connector's own properties. */
export function resolveNatsProps(props: Props, ctx: ConnectorContext, where: string): Props {
  const confs = ctx.dataDir ? readNamedConfigFile(natsConfigFile(ctx.dataDir)) : {};
  return layerNamedConfig(props, confs, where, 'etc/nats_source.json');
}
