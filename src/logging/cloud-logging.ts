/**
 * A logger that writes one JSON object per line in the shape Cloud Logging's agents read on
 * Cloud Run, App Engine and GKE: severity, message, time, trace, labels, and error stacks in
 * `stack_trace` so Error Reporting groups them.
 */
import type { LogFields, Logger } from '../core/logger.js';

export interface CloudLoggingOptions {
  /** For `logging.googleapis.com/trace` (projects/P/traces/T). Default GOOGLE_CLOUD_PROJECT or GCLOUD_PROJECT. */
  projectId?: string | (() => string | undefined);
  /** Labels added to every entry. */
  labels?: Record<string, string>;
  /** Where lines go. Default: process.stdout. */
  write?: (line: string) => void;
  /** Error Reporting's serviceContext. Default from K_SERVICE/K_REVISION or GAE_SERVICE/GAE_VERSION. */
  service?: { service: string; version?: string };
}

type Severity = 'INFO' | 'WARNING' | 'ERROR';

/** The task fields that also become labels (labels must be strings). */
const LABEL_FIELDS = ['taskId', 'taskName', 'queue', 'attempt'] as const;
const ERROR_EVENT_TYPE = 'type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent';

/** Where this process runs, judged from the variables the platforms set. */
export function onGoogleCloud(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.K_SERVICE || env.GAE_ENV || env.KUBERNETES_SERVICE_HOST);
}

function plain(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code !== undefined ? { code: String(code) } : {}), ...(value.stack ? { stack: value.stack } : {}) };
  }
  return value;
}

function stackOf(error: unknown): string | undefined {
  if (error instanceof Error) return error.stack;
  if (error && typeof error === 'object' && 'stack' in error && typeof error.stack === 'string') return error.stack;
  return undefined;
}

function defaultService(env: NodeJS.ProcessEnv): { service: string; version?: string } | undefined {
  const service = env.K_SERVICE ?? env.GAE_SERVICE;
  if (!service) return undefined;
  const version = env.K_REVISION ?? env.GAE_VERSION;
  return { service, ...(version ? { version } : {}) };
}

export function cloudLoggingLogger(options: CloudLoggingOptions = {}): Logger {
  const write = options.write ?? ((text: string) => process.stdout.write(`${text}\n`));
  const service = options.service ?? defaultService(process.env);
  const projectId = (): string | undefined => {
    const configured = typeof options.projectId === 'function' ? options.projectId() : options.projectId;
    return configured ?? process.env.GOOGLE_CLOUD_PROJECT ?? process.env.GCLOUD_PROJECT;
  };

  const entry = (severity: Severity, message: string, fields: LogFields = {}): Record<string, unknown> => {
    const { traceId, spanId, traceSampled, ...rest } = fields;
    const out: Record<string, unknown> = { severity, message, time: new Date().toISOString() };
    for (const [key, value] of Object.entries(rest)) out[key] = plain(value);
    const labels: Record<string, string> = { ...options.labels };
    for (const key of LABEL_FIELDS) if (rest[key] !== undefined) labels[key] = String(rest[key]);
    if (Object.keys(labels).length > 0) out['logging.googleapis.com/labels'] = labels;
    if (typeof traceId === 'string') {
      const project = projectId();
      out['logging.googleapis.com/trace'] = project ? `projects/${project}/traces/${traceId}` : traceId;
      if (typeof spanId === 'string') out['logging.googleapis.com/spanId'] = spanId;
      if (typeof traceSampled === 'boolean') out['logging.googleapis.com/trace_sampled'] = traceSampled;
    }
    const stack = stackOf(rest.error) ?? stackOf(rest.err);
    if (stack) {
      out.stack_trace = stack;
      if (severity === 'ERROR') out['@type'] = ERROR_EVENT_TYPE;
    }
    if (service) out.serviceContext = service;
    return out;
  };

  const emit = (severity: Severity) => (message: string, fields?: LogFields) => {
    let text: string;
    try {
      text = JSON.stringify(entry(severity, message, fields), (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
    } catch {
      // A cycle in caller-supplied fields must not lose the entry itself.
      text = JSON.stringify(entry(severity, message));
    }
    write(text);
  };

  return { info: emit('INFO'), warn: emit('WARNING'), error: emit('ERROR') };
}
