/** MQTT topic-filter rules, shared by the memory bus: `+` matches one level, a final `#` the rest. */
import { StreamplugError } from '../errors.js';

export function validateFilter(filter: string): void {
  const levels = filter.split('/');
  const ok =
    filter.length > 0 &&
    levels.every((l, i) => (l.includes('#') ? l === '#' && i === levels.length - 1 : !l.includes('+') || l === '+'));
  if (!ok)
    throw new StreamplugError(
      'E_CONNECTOR_CONFIG',
      `topic filter ${JSON.stringify(filter)} is invalid: "+" must fill a whole level and "#" must be the whole last level`,
      { filter },
    );
}

export function validateTopic(topic: string): void {
  if (topic.length === 0 || topic.includes('+') || topic.includes('#'))
    throw new StreamplugError(
      'E_CONNECTOR_CONFIG',
      `topic ${JSON.stringify(topic)} is invalid for publishing: it must be non-empty and contain no wildcards`,
      { topic },
    );
}

export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true; // also matches the parent level ("a/#" matches "a")
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
