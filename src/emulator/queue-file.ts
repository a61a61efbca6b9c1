// Queues preconfigured at start, from a YAML (or JSON) file or the same content given in code. Two
// shapes: a list of queues (djangae's CLOUD_TASKS_QUEUES names, or Cloud Tasks' own field names),
// and App Engine's queue.yaml (`queue:` entries with rate, bucket_size, retry_parameters, target...),
// so App Engine users bring theirs unchanged.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { parseQueueName } from './names.js';
import { defaultQueueConfig, validateQueueConfig, type AppEngineRouting, type QueueConfig } from './queue-config.js';

/** One queue as a queue file lists it (every key optional but the name). */
export type QueueFileEntry = Record<string, unknown>;

/** A queue file's content: a list of queues, `{ queues: [...] }`, or App Engine's `{ queue: [...] }`. */
export type QueuesSource = string | QueueFileEntry[] | { queues: QueueFileEntry[] } | { queue: QueueFileEntry[] };

export interface QueueSpec {
  /** Full queue name. */
  name: string;
  config: QueueConfig;
  paused: boolean;
}

/** Cloud Tasks says queue.yaml queues keep task names taken for about 9 days. */
const QUEUE_YAML_DEDUP_MS = 9 * 24 * 3600 * 1000;

export class QueueFileError extends Error {
  readonly code = 'EMULATOR_QUEUE_FILE_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'QueueFileError';
  }
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** queue.yaml's rate: "5/s", "10/m", "1/h", "2/d" as dispatches per second. */
function rateOf(value: unknown, where: string): number {
  if (typeof value === 'number') return value;
  const match = /^\s*(\d+(?:\.\d+)?)\s*\/\s*([smhd])\s*$/.exec(String(value));
  if (!match) throw new QueueFileError(`${where}: rate "${String(value)}" must look like 5/s, 10/m, 1/h or 2/d`);
  return Number(match[1]) / UNIT_SECONDS[match[2]!]!;
}

/** A duration: seconds as a number, or "30s", "10m", "2h", "3d" (queue.yaml's task_age_limit), or "1.5s". */
function durationMs(value: unknown, where: string): number {
  if (typeof value === 'number') return Math.round(value * 1000);
  const match = /^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$/.exec(String(value));
  if (!match) throw new QueueFileError(`${where}: "${String(value)}" is not a duration (seconds, or 30s, 10m, 2h, 3d)`);
  return Math.round(Number(match[1]) * UNIT_SECONDS[match[2] || 's']! * 1000);
}

function numberOf(value: unknown, where: string): number {
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(n)) throw new QueueFileError(`${where}: "${String(value)}" is not a number`);
  return n;
}

function objectOf(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new QueueFileError(`${where} must be a mapping`);
  return value as Record<string, unknown>;
}

function fullName(name: unknown, project: string, location: string, where: string): string {
  if (typeof name !== 'string' || !name) throw new QueueFileError(`${where}: every queue needs a name`);
  const full = name.includes('/') ? name : `projects/${project}/locations/${location}/queues/${name}`;
  try {
    parseQueueName(full);
  } catch (error) {
    throw new QueueFileError(`${where}: ${error instanceof Error ? error.message : String(error)}`);
  }
  return full;
}

/** queue.yaml target: "service" or "version.service". */
function routingOfTarget(target: string): AppEngineRouting {
  const parts = target.split('.');
  if (parts.length === 1) return { service: parts[0]!, version: '', instance: '' };
  return { service: parts[parts.length - 1]!, version: parts.slice(0, -1).join('.'), instance: '' };
}

function fromQueueYaml(entry: QueueFileEntry, project: string, location: string, where: string): QueueSpec {
  const config = defaultQueueConfig();
  config.taskDedupWindowMs = QUEUE_YAML_DEDUP_MS;
  let paused = false;
  for (const [key, value] of Object.entries(entry)) {
    switch (key) {
      case 'name':
        break;
      case 'mode':
        if (value !== 'push') throw new QueueFileError(`${where}: mode "${String(value)}" is not supported (Cloud Tasks v2 has push queues only)`);
        break;
      case 'rate':
        config.rateLimits.maxDispatchesPerSecond = rateOf(value, where);
        break;
      case 'bucket_size':
        config.maxBurstSize = numberOf(value, `${where}.bucket_size`);
        break;
      case 'max_concurrent_requests':
        config.rateLimits.maxConcurrentDispatches = numberOf(value, `${where}.max_concurrent_requests`);
        break;
      case 'target':
        config.appEngineRoutingOverride = routingOfTarget(String(value));
        break;
      case 'retry_parameters':
        for (const [rkey, rvalue] of Object.entries(objectOf(value, `${where}.retry_parameters`))) {
          const at = `${where}.retry_parameters.${rkey}`;
          // RetryConfig.max_attempts "has the same meaning as task_retry_limit" (queue.proto).
          if (rkey === 'task_retry_limit') config.retry.maxAttempts = numberOf(rvalue, at);
          else if (rkey === 'task_age_limit') config.retry.maxRetryDurationMs = Math.floor(durationMs(rvalue, at) / 1000) * 1000;
          else if (rkey === 'min_backoff_seconds') config.retry.minBackoffMs = durationMs(numberOf(rvalue, at), at);
          else if (rkey === 'max_backoff_seconds') config.retry.maxBackoffMs = durationMs(numberOf(rvalue, at), at);
          else if (rkey === 'max_doublings') config.retry.maxDoublings = numberOf(rvalue, at);
          else throw new QueueFileError(`${at}: unknown retry parameter`);
        }
        break;
      case 'acl':
        throw new QueueFileError(`${where}: acl applies to pull queues, which Cloud Tasks v2 does not have`);
      case 'state':
        paused = String(value).toUpperCase() === 'PAUSED';
        break;
      default:
        throw new QueueFileError(`${where}: unknown queue.yaml field "${key}"`);
    }
  }
  return { name: fullName(entry['name'], project, location, where), config, paused };
}

function fromList(entry: QueueFileEntry, project: string, location: string, where: string): QueueSpec {
  const config = defaultQueueConfig();
  let paused = false;
  const flat: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entry)) {
    const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    if (snake === 'rate_limits' || snake === 'retry_config') {
      for (const [inner, innerValue] of Object.entries(objectOf(value, `${where}.${key}`))) {
        flat[inner.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = innerValue;
      }
    } else {
      flat[snake] = value;
    }
  }
  for (const [key, value] of Object.entries(flat)) {
    const at = `${where}.${key}`;
    switch (key) {
      case 'name':
        break;
      case 'rate_per_second': // djangae
      case 'max_dispatches_per_second':
        config.rateLimits.maxDispatchesPerSecond = numberOf(value, at);
        break;
      case 'rate_max_concurrent': // djangae
      case 'max_concurrent_dispatches':
        config.rateLimits.maxConcurrentDispatches = numberOf(value, at);
        break;
      case 'max_burst_size':
        config.maxBurstSize = numberOf(value, at);
        break;
      case 'retry_max_attempts': // djangae
      case 'max_attempts':
        config.retry.maxAttempts = numberOf(value, at);
        break;
      case 'min_backoff':
        config.retry.minBackoffMs = durationMs(value, at);
        break;
      case 'max_backoff':
        config.retry.maxBackoffMs = durationMs(value, at);
        break;
      case 'max_doublings':
        config.retry.maxDoublings = numberOf(value, at);
        break;
      case 'max_retry_duration':
        config.retry.maxRetryDurationMs = Math.floor(durationMs(value, at) / 1000) * 1000;
        break;
      case 'app_engine_routing_override': {
        const routing = objectOf(value, at);
        config.appEngineRoutingOverride = {
          service: String(routing['service'] ?? ''),
          version: String(routing['version'] ?? ''),
          instance: String(routing['instance'] ?? ''),
        };
        break;
      }
      case 'logging_sampling_ratio':
        config.loggingSamplingRatio = numberOf(value, at);
        break;
      case 'stackdriver_logging_config':
        config.loggingSamplingRatio = numberOf(objectOf(value, at)['sampling_ratio'] ?? objectOf(value, at)['samplingRatio'] ?? 0, at);
        break;
      case 'state':
        if (!['RUNNING', 'PAUSED'].includes(String(value).toUpperCase())) throw new QueueFileError(`${at}: RUNNING or PAUSED`);
        paused = String(value).toUpperCase() === 'PAUSED';
        break;
      default:
        throw new QueueFileError(`${at}: unknown queue field`);
    }
  }
  return { name: fullName(entry['name'], project, location, where), config, paused };
}

/** Reads queue definitions: a file path (YAML or JSON), or the parsed content. */
export function readQueueSpecs(source: QueuesSource, project: string, location: string): QueueSpec[] {
  let content: unknown = source;
  let origin = 'queues';
  if (typeof source === 'string') {
    origin = source;
    let text: string;
    try {
      text = readFileSync(source, 'utf8');
    } catch (error) {
      throw new QueueFileError(`cannot read the queues file ${source}: ${error instanceof Error ? error.message : String(error)}`);
    }
    try {
      content = parseYaml(text);
    } catch (error) {
      throw new QueueFileError(`${source} is not valid YAML: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  let entries: unknown;
  let appEngine = false;
  if (Array.isArray(content)) entries = content;
  else if (content && typeof content === 'object' && 'queue' in content) {
    appEngine = true;
    const { queue, total_storage_limit: _ignored, ...rest } = content as Record<string, unknown>;
    if (Object.keys(rest).length > 0) throw new QueueFileError(`${origin}: unknown queue.yaml key(s) ${Object.keys(rest).join(', ')}`);
    entries = queue;
  } else if (content && typeof content === 'object' && 'queues' in content) entries = (content as { queues: unknown }).queues;
  if (!Array.isArray(entries)) {
    throw new QueueFileError(`${origin}: expected a list of queues, { queues: [...] } or App Engine's queue.yaml ({ queue: [...] })`);
  }
  const specs = entries.map((entry, index) => {
    const where = `${origin}: queue ${index + 1}`;
    const object = objectOf(entry, where) as QueueFileEntry;
    const spec = appEngine ? fromQueueYaml(object, project, location, where) : fromList(object, project, location, where);
    try {
      validateQueueConfig(spec.config);
    } catch (error) {
      throw new QueueFileError(`${where} (${spec.name}): ${error instanceof Error ? error.message : String(error)}`);
    }
    return spec;
  });
  return specs;
}
