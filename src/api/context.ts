import type { PluginManager } from '../manager/manager.js';
import type { RegistryLike } from '../manager/types.js';
import type { RuleService } from '../rules/service.js';
import type { FileRootPolicy } from './security/file-roots.js';

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
  /** How the API authenticates (set by the server); reported by GET /. */
  authMode?: 'token' | 'jwt' | 'none';
  /** Local zip paths a REST client may name; `roots` undefined = any (only with auth on). */
  fileRoots?: FileRootPolicy;
}

export interface RouteOptions {
  services: HostServices;
}
