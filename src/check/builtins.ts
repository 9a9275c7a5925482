/** SQL's built-in functions, as the check and the registry see them: a plugin may not take their names. */
import { lookupBuiltin, WINDOW_FUNCS } from '../engine/builtins.js';

/** The built-in `name` would shadow (lower-cased), or undefined when the name is free. */
export function builtinNamed(name: string): string | undefined {
  const lower = name.toLowerCase();
  return lookupBuiltin(lower) !== undefined || WINDOW_FUNCS.has(lower) ? lower : undefined;
}
