import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { checkPluginFile } from '../check/index.js';
import type { CheckReport } from '../check/types.js';
import { StreamplugError } from '../errors.js';
import { runInstallChecks, pluginNameProblem } from './install-checks.js';
import type { PluginType } from './layout.js';
import type { ZipLimits } from './limits.js';
import { hashFiles, parseSignature, verifyManifest, type SignatureFile, type TrustedKey } from './signature.js';
import type { PluginMetadata } from './types.js';
import { extractZip, type UnpackProgress } from './zip.js';

/** A plugin zip unpacked into a work folder and checked, ready to be moved into place. */
export interface UnpackedPlugin {
  name: string;
  type: PluginType;
  dir: string;
  /** Absolute path of the library inside `dir`, and its name in the zip. */
  library: string;
  libraryEntry: string;
  flavour: 'so' | 'node';
  sha256: string;
  metadata?: PluginMetadata;
  /** A source's default configuration (NAME.yaml). */
  yaml?: string;
  /** Files under the zip's etc/ folder, relative to it. */
  etcFiles: string[];
  signature?: SignatureFile;
  /** Fingerprint of the trusted key that verified the zip's manifest. */
  signedBy?: string;
  /** What that signature covers (zip paths), empty when not verified. */
  signedFiles: string[];
  report: CheckReport;
  /** Private dependencies the zip carries under lib/ (paths relative to `dir`, e.g. lib/libdep.so.1). */
  privateLibs: string[];
}

export interface UnpackOptions {
  type: PluginType;
  /** The install name; when absent (pack, `plugin check`) it is taken from the library's name. */
  name?: string;
  limits: ZipLimits;
  keys: TrustedKey[];
  /** Refuse zips without a valid signature from a trusted key (the host's explicit requireSignatures). */
  requireSignatures?: boolean;
  onProgress?: (p: UnpackProgress) => void;
  /** The operator's loadTimeoutMs, for the trial load. */
  loadTimeoutMs?: number;
}

/** Metadata (NAME.json) is small; a 63 MB one blocked the host on every list. */
export const MAX_METADATA_BYTES = 64 * 1024;

const LIB_RE = /^([A-Za-z0-9_-]+)(?:@([^/]+))?\.(so|node)$/;

export function assertPluginName(name: string): void {
  const problem = pluginNameProblem(name);
  if (problem) throw new StreamplugError(problem.code, problem.message, { name });
}

/** Rows of the plugin check that concern plugins only: a private library of lib/ need not pass them. */
const PLUGIN_ONLY_CHECKS = new Set(['manifest', 'contract', 'entry', 'limits', 'functions', 'addon']);

/**
 * A zip's private dependency (lib/…): an ELF library this process can map, whose own needs
 * resolve. It is not a plugin, so the manifest and entry point rows do not apply.
 */
function checkPrivateLibrary(dir: string, rel: string): void {
  const report = checkPluginFile(path.join(dir, rel));
  const refused = report.rows.find((r) => r.status === 'refused' && !PLUGIN_ONLY_CHECKS.has(r.check));
  if (refused) {
    throw new StreamplugError(refused.code as never, `private library ${rel} in the zip: ${refused.message}`, { entry: rel, check: refused.check });
  }
}

export async function unpackPlugin(zipFile: string, dir: string, opts: UnpackOptions): Promise<UnpackedPlugin> {
  if (opts.name !== undefined) assertPluginName(opts.name);
  fs.mkdirSync(dir, { recursive: true });
  const files = await extractZip(zipFile, dir, opts.limits, opts.onProgress);

  const rootFiles = files.filter((f) => !f.includes('/'));
  const libs = rootFiles.filter((f) => LIB_RE.test(f));
  // lib/: private dependencies, found by the plugin through RUNPATH $ORIGIN/lib (plugin.h, CMake helper).
  const privateLibs = files.filter((f) => f.startsWith('lib/') && !f.endsWith('/'));
  const nested = files.filter((f) => f.includes('/') && !f.startsWith('etc/') && !f.startsWith('lib/') && /\.(so|node)$/.test(f));
  const wanted = opts.name;
  const matching = wanted ? libs.filter((f) => LIB_RE.exec(f)![1].toLowerCase() === wanted.toLowerCase()) : libs;
  const expected = wanted ? `${wanted}.so or ${wanted}.node (optionally ${wanted}@VERSION.so)` : 'NAME.so or NAME.node';
  if (matching.length === 0) {
    if (libs.length > 0) {
      throw new StreamplugError(
        'E_ZIP_BAD_NAME',
        `zip holds ${libs.join(', ')} but the plugin is named "${wanted}"; expected ${expected} at the zip root: rename the library or install under its name`,
        { found: libs, expected: wanted },
      );
    }
    const inFolders = [...nested, ...privateLibs.filter((f) => /\.(so|node)$/.test(f))];
    const hint = inFolders.length
      ? ` (found ${inFolders.join(', ')} in a folder: the plugin library belongs at the zip root; lib/ holds only the private libraries it needs)`
      : '';
    throw new StreamplugError('E_ZIP_NO_LIBRARY', `zip has no plugin library; expected ${expected} at its root${hint}`, {
      files,
    });
  }
  if (matching.length > 1) {
    throw new StreamplugError('E_ZIP_BAD_NAME', `zip holds several libraries (${matching.join(', ')}); expected exactly one`, {
      found: matching,
    });
  }
  const libraryEntry = matching[0];
  const m = LIB_RE.exec(libraryEntry)!;
  const base = m[1];
  const name = wanted ?? base;
  assertPluginName(name);
  const flavour = m[3] as 'so' | 'node';
  const library = path.join(dir, libraryEntry);

  const rootNamed = (ext: string): string | undefined =>
    rootFiles.find((f) => f.toLowerCase() === `${base.toLowerCase()}${ext}` || f.toLowerCase() === `${name.toLowerCase()}${ext}`);

  let metadata: PluginMetadata | undefined;
  const metaFile = rootNamed('.json');
  if (metaFile) {
    const size = fs.statSync(path.join(dir, metaFile)).size;
    if (size > MAX_METADATA_BYTES) {
      throw new StreamplugError('E_BAD_REQUEST', `${metaFile} in the zip is ${size} bytes; metadata is limited to ${MAX_METADATA_BYTES} bytes: keep NAME.json to version, author and descriptions`, {
        entry: metaFile,
        bytes: size,
        limit: MAX_METADATA_BYTES,
      });
    }
    try {
      const parsed = JSON.parse(fs.readFileSync(path.join(dir, metaFile), 'utf8')) as unknown;
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
      metadata = parsed as PluginMetadata;
    } catch (e) {
      throw new StreamplugError('E_BAD_REQUEST', `${metaFile} in the zip is not valid metadata (${(e as Error).message}); expected a JSON object`, {
        entry: metaFile,
      });
    }
  }
  const yamlFile = rootNamed('.yaml') ?? rootNamed('.yml');
  const sigFile = rootNamed('.sig') ?? rootFiles.find((f) => f === `${libraryEntry}.sig`);
  const signature = sigFile ? parseSignature(fs.readFileSync(path.join(dir, sigFile), 'utf8'), sigFile) : undefined;
  const etcFiles = files.filter((f) => f.startsWith('etc/')).map((f) => f.slice(4)).filter(Boolean);

  for (const rel of privateLibs) checkPrivateLibrary(dir, rel);
  const report = await runInstallChecks(library, { type: opts.type, name, loadTimeoutMs: opts.loadTimeoutMs });
  if (!report.loadable) {
    throw (
      report.error ??
      new StreamplugError('E_BAD_DESCRIPTOR', `${libraryEntry} cannot be loaded by this host (the check refused it)`, { file: libraryEntry })
    );
  }

  const bytes = fs.readFileSync(library);
  // The version folder's name covers the private libraries too: same library, other deps, other folder.
  const hash = crypto.createHash('sha256').update(bytes);
  for (const rel of [...privateLibs].sort()) hash.update(rel).update(fs.readFileSync(path.join(dir, rel)));
  const sha256 = hash.digest('hex');
  // The signature covers every file of the zip (library, metadata, yaml, etc/, lib/), not the library alone.
  const found = hashFiles(dir, files.filter((f) => f !== sigFile));
  const signedBy = verifyManifest(found, signature, opts.keys, { required: !!opts.requireSignatures, what: `the zip of ${name}` });

  return {
    name,
    type: opts.type,
    dir,
    library,
    libraryEntry,
    flavour,
    sha256,
    metadata,
    yaml: yamlFile ? path.join(dir, yamlFile) : undefined,
    etcFiles,
    signature,
    signedBy,
    signedFiles: signedBy && signature?.files ? Object.keys(signature.files).sort() : [],
    report,
    privateLibs,
  };
}
