/** cloud-defer: defer a function call to Google Cloud Tasks from Express or Koa. */
export { createDeferred, Deferred, DEFAULT_HANDLER_PATH, DEFAULT_SWEEP_PATH } from './deferred.js';
export type { CreateDeferredOptions, HttpTargetOptions, AppEngineTargetOptions } from './deferred.js';
export { deferredMiddleware } from './http/express.js';
export { configure, task, defer, deferIteration, ready, defaultDeferred } from './default-instance.js';
export type { ExpressMiddleware } from './http/express.js';
export { currentTask } from './core/context.js';
export type { TaskContext } from './core/context.js';
export {
  CloudDeferError,
  DuplicateTaskError,
  PermanentTaskFailure,
  SingularTaskFailure,
} from './core/errors.js';
export type { CloudDeferErrorCode } from './core/errors.js';
export type { DeferOptions, DeferredTask, TaskInfo, DrainOptions, DrainResult, DrainMark, SweepResult } from './core/engine.js';
export type { TaskRecord, TaskStatus, AttemptRecord, TaskErrorInfo } from './core/records.js';
export type { Stores, PayloadStore, StateStore, TransactionHook, TaskQuery, TaskPage } from './core/stores.js';
export type { QueueConfig, RateLimits, RetryConfig, QueueTransport } from './core/transport.js';
export type { AuthOptions, OidcAuthOptions, AppEngineAuthOptions, NoAuthOptions } from './http/auth.js';
export type { Logger } from './core/logger.js';
export { silentLogger, consoleLogger } from './core/logger.js';
export { createCodec } from './core/codec.js';
export type { Codec, CustomType } from './core/codec.js';
export { currentShardIndex } from './iteration/iteration.js';
export type { DeferIterationOptions, IterationInfo } from './iteration/iteration.js';
export type { IterationRecord, IterationSource, SourceSpec, SourcePage, SourceItem, ShardProgress, IterationStore } from './core/iteration.js';
export { DEFAULT_CONSOLE_PATH } from './console/console.js';
export type { ConsoleOptions, ConsoleRequest, ConsolePrincipal, ConsoleAuthorization } from './console/console.js';
export type { TaskCounters, AttemptSample, CounterBucket, CounterResolution } from './core/counters.js';
export type { FieldsFirstLogger, LogFields } from './core/logger.js';
export { cloudLoggingLogger, fieldsFirst } from './logging/index.js';
export type { CloudLoggingOptions, LoggerOption } from './logging/index.js';
export { openTelemetry } from './otel/index.js';
export type { OpenTelemetryOptions } from './otel/index.js';
export type { TaskTelemetry, TaskLabels, RunLabels, RunOutcome, DeliveryTrace } from './core/telemetry.js';
export type { DeferManyItem, DeferManyOptions, DeferManyResult } from './core/defer-many.js';
export { formatReport } from './doctor.js';
export type { DoctorOptions, DoctorReport, DoctorCheck, CheckStatus, RedisInfoClient } from './doctor.js';
