import type { PluginManager } from '../manager/manager.js';
import type { RegistryLike } from '../manager/types.js';

/**
 * What route modules get: the host's services. Later areas (rules, streams) add their service
 * here and register their routes in server.ts; routes never construct services themselves.
 */
export interface HostServices {
  dataDir: string;
  manager: PluginManager;
  registry: RegistryLike;
}

export interface RouteOptions {
  services: HostServices;
}
