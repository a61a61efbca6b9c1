export { cloudLoggingLogger, onGoogleCloud, type CloudLoggingOptions } from './cloud-logging.js';
export { fieldsFirst, resolveLogger, type LoggerOption } from './adapt.js';
export { traceOf, parseTraceparent, parseCloudTraceContext, cloudTraceContext } from './trace-header.js';
