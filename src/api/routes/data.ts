/**
 * eKuiper's rule-set endpoints (src/rules/ruleset.ts has the format and the rules):
 *   GET  /data/export                  the host's streams, rules, plugin references and source configs
 *   POST /data/import[?partial=1]      body {"content": "<rule set JSON>"}, {"file": "file:///….json"},
 *                                      or the rule set object itself
 * Import answers 200 with what happened to each item, or 400 E_IMPORT_INCOMPLETE with the same report
 * and the items that failed (the others are applied).
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { StreamplugError } from '../../errors.js';
import type { RuleService } from '../../rules/service.js';
import { exportRuleSet, importRuleSet, type PluginCatalog } from '../../rules/ruleset.js';
import { errorHandler } from '../errors.js';
import { useJsonBodies } from '../../rules/json-body.js';

function contentOf(body: unknown): unknown {
  if (typeof body === 'string') return body;
  const b = body as Record<string, unknown> | null;
  if (!b || typeof b !== 'object' || Array.isArray(b))
    throw new StreamplugError('E_BAD_REQUEST', 'the body must be {"content": "<rule set JSON>"}, {"file": "file:///path.json"} or the rule set object');
  if (typeof b.content === 'string') return b.content;
  if (typeof b.file === 'string') {
    let file = b.file;
    if (file.startsWith('file:')) file = fileURLToPath(file);
    else if (/^[a-z]+:\/\//i.test(file))
      throw new StreamplugError('E_BAD_REQUEST', `"file" ${JSON.stringify(b.file)}: only file:// URLs or paths on the host are read; send the rule set as "content" instead`);
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new StreamplugError('E_NOT_FOUND', `rule set file ${file} cannot be read (${(e as Error).message}); give a file on the host or send "content"`);
    }
  }
  return b;
}

export function registerDataRoutes(app: FastifyInstance, service: RuleService, plugins: PluginCatalog | undefined): PromiseLike<unknown> {
  return app.register(async (scope) => {
    scope.setErrorHandler(errorHandler);
    useJsonBodies(scope);

    scope.get('/data/export', async () => exportRuleSet(service, plugins, service.dataDir));

    scope.post<{ Querystring: { partial?: string } }>('/data/import', async (req, reply) => {
      const partial = req.query.partial === '1' || req.query.partial === 'true';
      const report = await importRuleSet(service, plugins, service.dataDir, contentOf(req.body), { partial });
      if (report.failed.length === 0) return { message: `rule set imported: ${report.applied.length} item(s)`, ...report };
      const first = report.failed[0];
      return reply.code(400).send({
        error: 'E_IMPORT_INCOMPLETE',
        message: `${report.failed.length} item(s) of the rule set were not imported, the first: ${first.section}.${first.name}: ${first.message}; fix them and import again (the rest is applied)`,
        ...report,
      });
    });
  });
}
