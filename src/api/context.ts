import type { PluginManager } from '../manager/manager.js';
import type { RegistryLike } from '../manager/types.js';
import type { RuleService } from '../rules/service.js';

/**
 * What route modules get: the host's services. Later areas (rules, streams) add their service
 * here and register their routes in server.ts; routes never construct services themselves.
 */
export interface HostServices {
  dataDir: string;
  manager: PluginManager;
  registry: RegistryLike;
  /** Streams and rules; absent in hosts built for plugin-only tests. */
  rules?: RuleService;
}

export interface RouteOptions {
  services: HostServices;
}
