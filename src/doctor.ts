/**
 * `deferred.doctor()` and `npx cloud-defer doctor`: checks a deployment before it takes traffic
 * and says how to fix each problem. It reads and never changes: queues are looked up (not
 * created), permissions are asked with TestIamPermissions, the store is read once.
 */
import type { CloudTasksClient } from '@google-cloud/tasks';
import { GoogleAuth } from 'google-auth-library';
import type { EngineTarget } from './core/engine.js';
import type { Stores } from './core/stores.js';
import type { QueueConfig, QueueInfo, QueueTransport } from './core/transport.js';
import type { AuthOptions } from './http/auth.js';
import { CloudTasksTransport } from './queue/cloud-tasks.js';

export type CheckStatus = 'pass' | 'fail' | 'warn' | 'unchecked';

export interface DoctorCheck {
  /** Stable id, e.g. `queue.exists:mail`, `iam.queue:mail`, `target.audience`. */
  id: string;
  status: CheckStatus;
  /** What was found. */
  detail: string;
  /** What to do about it (set for fail, warn and unchecked). */
  fix?: string;
}

export interface DoctorReport {
  /** False when any check failed; `unchecked` does not fail unless `strict`. */
  ok: boolean;
  projectId?: string;
  location: string;
  checks: DoctorCheck[];
}

/** Anything with ioredis's `info(section)`: the eviction policy is read from INFO (Memorystore refuses CONFIG). */
export interface RedisInfoClient {
  info(section: string): Promise<string>;
}

export interface DoctorOptions {
  /** The dispatch deadline your defers use, in seconds. Default: Cloud Tasks' 600 s for HTTP targets. */
  dispatchDeadlineSeconds?: number;
  /** The Cloud Run service's request timeout, in seconds. Default: Cloud Run's 300 s when K_SERVICE is set, else unchecked. */
  requestTimeoutSeconds?: number;
  /** The ioredis client behind redisStores(), to check its eviction policy. */
  redis?: RedisInfoClient;
  /** Per call. Default 10 s. */
  timeoutMs?: number;
  /** Count "could not be checked" as a failure. */
  strict?: boolean;
}

/** What doctor needs to know of a Deferred; built by Deferred#doctor(). */
export interface DoctorContext {
  mode: 'embedded' | 'emulator' | 'cloud' | 'custom';
  projectId?: string;
  location: string;
  /** `queues:` from the configuration (created or updated at start-up). */
  queueConfigs: readonly QueueConfig[];
  /** Every queue defers may use (default queue, task defaults, configured queues). */
  queuesUsed: readonly string[];
  /** Throws when no target URL is configured. */
  target: () => EngineTarget;
  auth: AuthOptions;
  handlerPath: string;
  leaseMs: number;
  stores: Stores;
  /** A client that does not create queues (unlike ready()); undefined for a custom transport. */
  client: () => Promise<{ client: CloudTasksClient; projectId: string; close: boolean } | undefined>;
  /** The custom transport, in custom mode. */
  customTransport?: QueueTransport;
}

const GRPC = { PERMISSION_DENIED: 7, NOT_FOUND: 5, UNIMPLEMENTED: 12 } as const;
const CLOUD_RUN_DEFAULT_TIMEOUT_SECONDS = 300;
const HTTP_DEFAULT_DEADLINE_SECONDS = 600;

function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'number') return code;
  const cause = (err as { cause?: { code?: unknown } } | null)?.cause?.code;
  return typeof cause === 'number' ? cause : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** Fields of `wanted` that `actual` does not match (numbers compared with a little slack for durations). */
function mismatches(wanted: QueueConfig, actual: QueueInfo): string[] {
  const out: string[] = [];
  const compare = (group: 'rateLimits' | 'retryConfig') => {
    const want = (wanted[group] ?? {}) as Record<string, number | undefined>;
    const have = (actual[group] ?? {}) as Record<string, number | undefined>;
    for (const [key, value] of Object.entries(want)) {
      if (value === undefined) continue;
      const found = have[key];
      if (found === undefined || Math.abs(found - value) > 1e-3) out.push(`${group}.${key}: configured ${value}, queue has ${found ?? 'the default'}`);
    }
  };
  compare('rateLimits');
  compare('retryConfig');
  return out;
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).host;
  } catch {
    return undefined;
  }
}

class Doctor {
  readonly checks: DoctorCheck[] = [];

  constructor(
    private readonly context: DoctorContext,
    private readonly options: DoctorOptions,
  ) {}

  private add(check: DoctorCheck): void {
    this.checks.push(check);
  }

  private get timeoutMs(): number {
    return this.options.timeoutMs ?? 10_000;
  }

  async run(): Promise<DoctorReport> {
    const { context } = this;
    let projectId = context.projectId;
    const connection = await this.connect();
    if (connection) projectId = connection.projectId;
    try {
      const transport = connection
        ? new CloudTasksTransport({ client: connection.client, projectId: connection.projectId, location: context.location })
        : context.customTransport;
      const existing = await this.checkQueues(transport);
      if (connection) await this.checkQueuePermissions(connection.client, connection.projectId, existing);
      else
        this.add({
          id: 'iam.queues',
          status: 'unchecked',
          detail: 'a custom transport: queue permissions could not be checked',
          fix: 'Check the permissions of your transport yourself.',
        });
      await this.checkServiceAccount(projectId);
      this.checkTarget();
      this.checkDeadline();
      await this.checkStore();
    } finally {
      if (connection?.close) await connection.client.close().catch(() => undefined);
    }
    const failed = this.checks.some((c) => c.status === 'fail' || (this.options.strict === true && c.status === 'unchecked'));
    return { ok: !failed, ...(projectId ? { projectId } : {}), location: context.location, checks: this.checks };
  }

  private async connect(): Promise<{ client: CloudTasksClient; projectId: string; close: boolean } | undefined> {
    try {
      return await withTimeout(this.context.client(), this.timeoutMs, 'Cloud Tasks');
    } catch (err) {
      this.add({
        id: 'cloudtasks.connect',
        status: 'fail',
        detail: `could not reach Cloud Tasks: ${messageOf(err)}`,
        fix: 'Set projectId (or GOOGLE_CLOUD_PROJECT) and credentials (gcloud auth application-default login, or the runtime service account), or CLOUD_TASKS_EMULATOR_HOST for an emulator.',
      });
      return undefined;
    }
  }

  /** Each queue exists, runs, and has the configured settings. Returns the queues found. */
  private async checkQueues(transport: QueueTransport | undefined): Promise<Set<string>> {
    const found = new Set<string>();
    if (!transport) return found;
    const { location } = this.context;
    const configs = new Map<string, QueueConfig>();
    for (const name of this.context.queuesUsed) configs.set(name, { name });
    for (const config of this.context.queueConfigs) configs.set(config.name, config);
    for (const config of configs.values()) {
      const id = `queue.exists:${config.name}`;
      let info: QueueInfo | undefined;
      try {
        info = await withTimeout(transport.getQueue(config.name), this.timeoutMs, `GetQueue ${config.name}`);
      } catch (err) {
        const denied = grpcCode(err) === GRPC.PERMISSION_DENIED;
        this.add({
          id,
          status: 'fail',
          detail: `could not read queue ${config.name}: ${messageOf(err)}`,
          fix: denied
            ? `Grant the app's service account roles/cloudtasks.viewer (or roles/cloudtasks.enqueuer, which includes reading queues) on the queue.`
            : 'Check that Cloud Tasks is reachable and the Cloud Tasks API is enabled: gcloud services enable cloudtasks.googleapis.com',
        });
        continue;
      }
      if (!info) {
        this.add({
          id,
          status: 'fail',
          detail: `queue ${config.name} does not exist in ${location}`,
          fix: `gcloud tasks queues create ${config.name} --location=${location}${this.context.queueConfigs.some((q) => q.name === config.name) ? ' (or start the app once with roles/cloudtasks.queueAdmin: it creates the queues listed in queues:)' : ''}`,
        });
        continue;
      }
      found.add(config.name);
      if (info.state === 'PAUSED' || info.state === 'DISABLED') {
        this.add({
          id,
          status: 'warn',
          detail: `queue ${config.name} is ${info.state}: it accepts tasks but dispatches none`,
          fix: `gcloud tasks queues resume ${config.name} --location=${location}`,
        });
      } else {
        this.add({ id, status: 'pass', detail: `queue ${config.name} exists and is ${info.state}` });
      }
      const wrong = mismatches(config, info);
      if (config.rateLimits || config.retryConfig) {
        this.add(
          wrong.length === 0
            ? { id: `queue.settings:${config.name}`, status: 'pass', detail: `queue ${config.name} has the configured rate limits and retry settings` }
            : {
                id: `queue.settings:${config.name}`,
                status: 'fail',
                detail: `queue ${config.name} differs from queues: in the configuration: ${wrong.join('; ')}`,
                fix: `Restart the app with roles/cloudtasks.queueAdmin so it applies queues: (UpdateQueue), or: gcloud tasks queues update ${config.name} --location=${location} with the configured values.`,
              },
        );
      }
    }
    return found;
  }

  private async checkQueuePermissions(client: CloudTasksClient, projectId: string, existing: Set<string>): Promise<void> {
    const { location } = this.context;
    const managed = new Set(this.context.queueConfigs.map((q) => q.name));
    for (const queue of new Set([...this.context.queuesUsed, ...managed])) {
      if (!existing.has(queue)) {
        this.add({
          id: `iam.queue:${queue}`,
          status: 'unchecked',
          detail: `permissions on queue ${queue} could not be checked: the queue could not be read`,
          fix: 'Fix the queue check above first.',
        });
      }
    }
    for (const queue of existing) {
      const wanted = ['cloudtasks.tasks.create', ...(managed.has(queue) ? ['cloudtasks.queues.update'] : [])];
      const id = `iam.queue:${queue}`;
      let granted: string[];
      try {
        const [response] = await withTimeout(
          client.testIamPermissions({ resource: `projects/${projectId}/locations/${location}/queues/${queue}`, permissions: wanted }),
          this.timeoutMs,
          `TestIamPermissions ${queue}`,
        );
        granted = response.permissions ?? [];
      } catch (err) {
        const unimplemented = grpcCode(err) === GRPC.UNIMPLEMENTED;
        this.add({
          id,
          status: 'unchecked',
          detail: unimplemented
            ? `permissions on queue ${queue} could not be checked: this Cloud Tasks endpoint does not implement TestIamPermissions (an emulator without IAM)`
            : `permissions on queue ${queue} could not be checked: ${messageOf(err)}`,
          fix: `On Google Cloud, run doctor with the app's credentials; it needs ${wanted.join(' and ')} on the queue.`,
        });
        continue;
      }
      const missing = wanted.filter((p) => !granted.includes(p));
      if (missing.length === 0) {
        this.add({ id, status: 'pass', detail: `the caller holds ${wanted.join(' and ')} on queue ${queue}` });
        continue;
      }
      const fixes: string[] = [];
      if (missing.includes('cloudtasks.tasks.create')) {
        fixes.push(
          `gcloud tasks queues add-iam-policy-binding ${queue} --location=${location} --member=serviceAccount:APP_SA --role=roles/cloudtasks.enqueuer`,
        );
      }
      if (missing.includes('cloudtasks.queues.update')) {
        fixes.push(
          `gcloud projects add-iam-policy-binding ${projectId} --member=serviceAccount:APP_SA --role=roles/cloudtasks.queueAdmin (queues: creates and updates queues at start-up; roles/cloudtasks.enqueuer does not grant queues.update)`,
        );
      }
      this.add({ id, status: 'fail', detail: `the caller lacks ${missing.join(' and ')} on queue ${queue}`, fix: fixes.join('\n') });
    }
  }

  /** The OIDC account exists and the caller may act as it (Cloud Tasks checks iam.serviceAccounts.actAs at CreateTask). */
  private async checkServiceAccount(projectId: string | undefined): Promise<void> {
    let target: EngineTarget;
    try {
      target = this.context.target();
    } catch {
      return; // reported by checkTarget
    }
    const email = target.default === 'http' ? target.http?.serviceAccountEmail : undefined;
    if (!email) return;
    const id = 'iam.serviceAccount';
    if (this.context.mode !== 'cloud') {
      this.add({
        id,
        status: 'unchecked',
        detail: `service account ${email} could not be checked: the emulator signs tokens for any account and has no IAM service`,
        fix: 'Run doctor against Google Cloud (no CLOUD_TASKS_EMULATOR_HOST) to check it.',
      });
      return;
    }
    const fix = `gcloud iam service-accounts add-iam-policy-binding ${email} --member=serviceAccount:APP_SA --role=roles/iam.serviceAccountUser`;
    try {
      const auth = new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] });
      const response = await withTimeout(
        auth.request<{ permissions?: string[] }>({
          url: `https://iam.googleapis.com/v1/projects/-/serviceAccounts/${encodeURIComponent(email)}:testIamPermissions`,
          method: 'POST',
          data: { permissions: ['iam.serviceAccounts.actAs'] },
        }),
        this.timeoutMs,
        'IAM',
      );
      if ((response.data.permissions ?? []).includes('iam.serviceAccounts.actAs')) {
        this.add({ id, status: 'pass', detail: `service account ${email} exists and the caller may act as it` });
      } else {
        this.add({
          id,
          status: 'fail',
          detail: `the caller may not act as ${email} (iam.serviceAccounts.actAs): CreateTask with an OIDC token will be refused`,
          fix,
        });
      }
    } catch (err) {
      const status = (err as { response?: { status?: number } }).response?.status;
      if (status === 404) {
        this.add({
          id,
          status: 'fail',
          detail: `service account ${email} does not exist`,
          fix: `gcloud iam service-accounts create ${email.split('@')[0]} --project=${projectId ?? 'PROJECT'}`,
        });
      } else {
        this.add({
          id,
          status: 'unchecked',
          detail: `service account ${email} could not be checked: ${messageOf(err)}`,
          fix: "Enable the IAM API (gcloud services enable iam.googleapis.com) and run doctor with the app's credentials.",
        });
      }
    }
  }

  /** The token Cloud Tasks signs must be one the handler accepts, and Cloud Run accepts. */
  private checkTarget(): void {
    const { context } = this;
    let target: EngineTarget;
    try {
      target = context.target();
    } catch (err) {
      this.add({
        id: 'target.url',
        status: 'fail',
        detail: messageOf(err),
        fix: 'Pass target: { url: "https://SERVICE-URL/_ah/queue/deferred", serviceAccountEmail } to createDeferred().',
      });
      return;
    }
    if (target.default === 'appEngine') {
      this.add({
        id: 'target.url',
        status: 'pass',
        detail: `App Engine target ${target.appEngine?.relativeUri ?? context.handlerPath} (no token: App Engine sets X-AppEngine-* itself)`,
      });
      return;
    }
    const http = target.http;
    if (!http) {
      this.add({
        id: 'target.url',
        status: 'fail',
        detail: 'no HTTP target URL is configured',
        fix: 'Pass target: { url: "https://SERVICE-URL/_ah/queue/deferred" } to createDeferred().',
      });
      return;
    }
    const url = typeof http.url === 'function' ? http.url() : http.url;
    const urlHost = hostOf(url);
    if (!urlHost) {
      this.add({
        id: 'target.url',
        status: 'fail',
        detail: `target URL "${url}" is not a URL`,
        fix: 'Use the service URL, e.g. https://my-service-abc123-uc.a.run.app/_ah/queue/deferred',
      });
      return;
    }
    const path = new URL(url).pathname;
    this.add(
      path === context.handlerPath
        ? { id: 'target.url', status: 'pass', detail: `tasks are sent to ${url}` }
        : {
            id: 'target.url',
            status: 'warn',
            detail: `tasks are sent to ${url}, whose path is not the handler path ${context.handlerPath}`,
            fix: `End the target URL with ${context.handlerPath}, or mount the middleware where the URL points.`,
          },
    );
    const auth = context.auth;
    if (auth.mode !== 'oidc') {
      if (context.mode === 'cloud') {
        this.add({
          id: 'target.audience',
          status: 'fail',
          detail: `auth mode "${auth.mode}": deliveries carry no verified token`,
          fix: 'Set target.serviceAccountEmail and auth: { mode: "oidc", serviceAccountEmail } (Cloud Run).',
        });
      }
      return;
    }
    const tokenAudience = http.audience ?? url;
    const accepted = auth.audience ? (typeof auth.audience === 'string' ? [auth.audience] : [...auth.audience]) : [url];
    const audienceHost = hostOf(tokenAudience);
    if (!accepted.includes(tokenAudience)) {
      this.add({
        id: 'target.audience',
        status: 'fail',
        detail: `Cloud Tasks will sign tokens for audience "${tokenAudience}" but the handler accepts only ${accepted.map((a) => `"${a}"`).join(', ')}: every delivery would get 403`,
        fix: 'Give target.audience and auth.audience the same value (or leave both unset: the target URL is used).',
      });
    } else if (audienceHost !== undefined && audienceHost !== urlHost) {
      this.add({
        id: 'target.audience',
        status: 'fail',
        detail: `the token audience "${tokenAudience}" names host ${audienceHost}, but tasks go to ${urlHost}: Cloud Run refuses a token whose audience is not its own URL`,
        fix: `Use the service URL (https://${urlHost}/...) as the audience, or add it as a custom audience: gcloud run services update SERVICE --add-custom-audiences=${tokenAudience}`,
      });
    } else {
      this.add({ id: 'target.audience', status: 'pass', detail: `tokens are signed for "${tokenAudience}", which the handler accepts` });
    }
    const emails = typeof auth.serviceAccountEmail === 'string' ? [auth.serviceAccountEmail] : [...auth.serviceAccountEmail];
    if (http.serviceAccountEmail && !emails.includes(http.serviceAccountEmail)) {
      this.add({
        id: 'target.serviceAccount',
        status: 'fail',
        detail: `tasks are signed as ${http.serviceAccountEmail} but the handler accepts only ${emails.join(', ')}`,
        fix: 'Use the same service account in target.serviceAccountEmail and auth.serviceAccountEmail.',
      });
    }
  }

  private checkDeadline(): void {
    let target: EngineTarget;
    try {
      target = this.context.target();
    } catch {
      return;
    }
    if (target.default === 'appEngine') return;
    const deadline = this.options.dispatchDeadlineSeconds ?? HTTP_DEFAULT_DEADLINE_SECONDS;
    const onCloudRun = Boolean(process.env.K_SERVICE);
    const timeout = this.options.requestTimeoutSeconds ?? (onCloudRun ? CLOUD_RUN_DEFAULT_TIMEOUT_SECONDS : undefined);
    const assumed =
      this.options.requestTimeoutSeconds === undefined ? " (Cloud Run's default; pass requestTimeoutSeconds / --request-timeout if yours differs)" : '';
    if (timeout === undefined) {
      this.add({
        id: 'deadline.requestTimeout',
        status: 'unchecked',
        detail: `dispatch deadline ${deadline} s could not be compared with the service's request timeout`,
        fix: "Pass requestTimeoutSeconds (--request-timeout) with your Cloud Run service's timeout.",
      });
    } else if (deadline > timeout) {
      this.add({
        id: 'deadline.requestTimeout',
        status: 'fail',
        detail: `the dispatch deadline (${deadline} s) is longer than the request timeout (${timeout} s${assumed}): a long task is cut off by the platform and retried while Cloud Tasks still waits`,
        fix: `Raise the service timeout: gcloud run services update SERVICE --timeout=${deadline}, or defer with dispatchDeadline: ${timeout}.`,
      });
    } else {
      this.add({
        id: 'deadline.requestTimeout',
        status: 'pass',
        detail: `the dispatch deadline (${deadline} s) fits the request timeout (${timeout} s${assumed})`,
      });
    }
    const leaseSeconds = this.context.leaseMs / 1000;
    if (deadline > leaseSeconds) {
      this.add({
        id: 'deadline.lease',
        status: 'fail',
        detail: `the dispatch deadline (${deadline} s) is longer than the run lease (${leaseSeconds} s): a retry could start a second run while the first is still going`,
        fix: `createDeferred({ leaseMs: ${(deadline + 30) * 1000} }) (a little over the deadline).`,
      });
    }
  }

  private async checkStore(): Promise<void> {
    const { stores } = this.context;
    try {
      await withTimeout(stores.state.getTask(`doctor-probe-${Date.now().toString(36)}`), this.timeoutMs, `the ${stores.kind} state store`);
      this.add({ id: 'store.reachable', status: 'pass', detail: `the ${stores.kind} state store answers` });
    } catch (err) {
      this.add({
        id: 'store.reachable',
        status: 'fail',
        detail: `the ${stores.kind} state store does not answer: ${messageOf(err)}`,
        fix: 'Check its address and credentials, and that the service can reach it (VPC connector / Direct VPC egress for Memorystore).',
      });
    }
    if (stores.kind !== 'redis') return;
    const id = 'store.redisEviction';
    if (!this.options.redis) {
      this.add({
        id,
        status: 'unchecked',
        detail: 'the Redis eviction policy could not be checked: no client given',
        fix: 'Pass doctor({ redis: client }) or --redis-url.',
      });
      return;
    }
    try {
      const info = await withTimeout(this.options.redis.info('memory'), this.timeoutMs, 'Redis INFO');
      const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
      if (policy === 'noeviction') {
        this.add({ id, status: 'pass', detail: 'Redis maxmemory-policy is noeviction' });
      } else {
        this.add({
          id,
          status: 'fail',
          detail: `Redis maxmemory-policy is ${policy ?? 'unknown'}: under memory pressure Redis deletes keys, task records and reference holds included (volatile-* evicts exactly the keys with a TTL: ours)`,
          fix: 'Memorystore: gcloud redis instances update INSTANCE --region=REGION --update-redis-config=maxmemory-policy=noeviction; self-managed: CONFIG SET maxmemory-policy noeviction (and in redis.conf).',
        });
      }
    } catch (err) {
      this.add({ id, status: 'fail', detail: `could not read the Redis eviction policy: ${messageOf(err)}`, fix: 'Check the Redis address given to doctor.' });
    }
  }
}

export function runDoctor(context: DoctorContext, options: DoctorOptions = {}): Promise<DoctorReport> {
  return new Doctor(context, options).run();
}

const MARK: Record<CheckStatus, string> = { pass: 'ok  ', fail: 'FAIL', warn: 'warn', unchecked: '?   ' };

/** A plain-text report, one check per line and its fix indented under it. */
export function formatReport(report: DoctorReport): string {
  const lines = [`cloud-defer doctor: project ${report.projectId ?? '(unknown)'}, location ${report.location}`];
  for (const check of report.checks) {
    lines.push(`${MARK[check.status]} ${check.id}: ${check.detail}`);
    if (check.fix && check.status !== 'pass') for (const fix of check.fix.split('\n')) lines.push(`       fix: ${fix}`);
  }
  const failed = report.checks.filter((c) => c.status === 'fail').length;
  const unchecked = report.checks.filter((c) => c.status === 'unchecked').length;
  lines.push(
    report.ok
      ? `All checks passed${unchecked ? ` (${unchecked} could not be checked)` : ''}.`
      : `${failed} check(s) failed${unchecked ? `, ${unchecked} could not be checked` : ''}.`,
  );
  return lines.join('\n');
}

export const DOCTOR_USAGE = `  cloud-defer doctor [--app MODULE] [--project P] [--location L] [--queue Q]... [--url URL]
                     [--service-account EMAIL] [--audience A] [--dispatch-deadline S]
                     [--request-timeout S] [--redis-url URL] [--json] [--strict]

Checks a deployment and prints each problem with its fix; exits 1 if any check failed (with
--strict, also if one could not be checked). --app loads a module that exports your Deferred
(module.exports, default or deferred; it must not start a server); otherwise the flags describe
it. CLOUD_TASKS_EMULATOR_HOST points it at an emulator.`;

interface DoctorArgs {
  app?: string;
  projectId?: string;
  location?: string;
  queues: string[];
  url?: string;
  serviceAccountEmail?: string;
  audience?: string;
  redisUrl?: string;
  json: boolean;
  options: DoctorOptions;
}

function seconds(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${flag} needs a number of seconds`);
  return value;
}

export function parseDoctorArgs(argv: readonly string[]): DoctorArgs {
  const args: DoctorArgs = { queues: [], json: false, options: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = (): string => {
      const next = inline ?? argv[++i];
      if (next === undefined || next === '') throw new Error(`${flag} needs a value\n\n${DOCTOR_USAGE}`);
      return next;
    };
    switch (flag) {
      case '--app':
        args.app = value();
        break;
      case '--project':
        args.projectId = value();
        break;
      case '--location':
        args.location = value();
        break;
      case '--queue':
        args.queues.push(value());
        break;
      case '--url':
        args.url = value();
        break;
      case '--service-account':
        args.serviceAccountEmail = value();
        break;
      case '--audience':
        args.audience = value();
        break;
      case '--dispatch-deadline':
        args.options.dispatchDeadlineSeconds = seconds(flag!, value());
        break;
      case '--request-timeout':
        args.options.requestTimeoutSeconds = seconds(flag!, value());
        break;
      case '--redis-url':
        args.redisUrl = value();
        break;
      case '--json':
        args.json = true;
        break;
      case '--strict':
        args.options.strict = true;
        break;
      default:
        throw new Error(`unknown option ${arg}\n\n${DOCTOR_USAGE}`);
    }
  }
  return args;
}

interface Doctorable {
  doctor(options?: DoctorOptions): Promise<DoctorReport>;
  close?(): Promise<void>;
}

function isDoctorable(value: unknown): value is Doctorable {
  return !!value && typeof (value as { doctor?: unknown }).doctor === 'function';
}

/** `cloud-defer doctor`: prints the report; resolves with the exit code. */
export async function doctorCommand(argv: readonly string[], write: (text: string) => void = (t) => process.stdout.write(t)): Promise<number> {
  const args = parseDoctorArgs(argv);
  let redis: (RedisInfoClient & { quit(): Promise<unknown> }) | undefined;
  if (args.redisUrl) {
    const { Redis } = require('ioredis') as typeof import('ioredis');
    redis = new Redis(args.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 5000 });
  }
  let subject: Doctorable;
  let owned = false;
  if (args.app) {
    const { resolve } = require('node:path') as typeof import('node:path');
    const loaded = require(resolve(args.app)) as Record<string, unknown>;
    const found = [loaded, loaded.default, loaded.deferred].find(isDoctorable);
    if (!found) throw new Error(`${args.app} does not export a Deferred (module.exports, default or deferred)`);
    subject = found;
  } else {
    const { createDeferred } = require('./deferred.js') as typeof import('./deferred.js');
    const stores = redis
      ? (require('../adapters/redis/index.js') as typeof import('../adapters/redis/index.js')).redisStores({
          client: redis as unknown as import('ioredis').Redis,
        })
      : undefined;
    subject = createDeferred({
      logger: false,
      telemetry: false,
      mode: process.env.CLOUD_TASKS_EMULATOR_HOST ? 'emulator' : 'cloud',
      ...(args.projectId ? { projectId: args.projectId } : {}),
      ...(args.location ? { location: args.location } : {}),
      ...(args.queues.length > 0 ? { queues: args.queues.map((name) => ({ name })), defaultQueue: args.queues[0]! } : {}),
      ...(args.url
        ? {
            target: {
              url: args.url,
              ...(args.serviceAccountEmail ? { serviceAccountEmail: args.serviceAccountEmail } : {}),
              ...(args.audience ? { audience: args.audience } : {}),
            },
          }
        : {}),
      ...(stores ? { stores } : {}),
    });
    owned = true;
  }
  try {
    const report = await subject.doctor({ ...args.options, ...(redis ? { redis } : {}) });
    write(args.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
    return report.ok ? 0 : 1;
  } finally {
    if (owned) await subject.close?.().catch(() => undefined);
    await redis?.quit().catch(() => undefined);
  }
}
