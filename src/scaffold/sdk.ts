/**
 * Where this streamplug's SDK lives: the CMake package (find_package(streamplug)), the contract
 * header and the testing API. Projects point at these folders; nothing is copied.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The package root (the folder holding package.json), from dist/src/scaffold/ or src/scaffold/. */
export const packageRoot = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json')) || !fs.existsSync(path.join(dir, 'native', 'include'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('streamplug: cannot find the package root above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
})();

export const sdk = {
  /** Holds streamplugConfig.cmake: `-Dstreamplug_DIR=<this>` or CMAKE_PREFIX_PATH. */
  cmakeDir: path.join(packageRoot, 'cmake'),
  /** Holds streamplug/plugin.h. */
  includeDir: path.join(packageRoot, 'native', 'include'),
  /** file: URL of the compiled streamplug/testing module. */
  testingUrl: pathToFileURL(path.join(packageRoot, 'dist', 'src', 'testing', 'index.js')).href,
  version: (JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version,
};
