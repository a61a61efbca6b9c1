// The REST surface of the emulator: HTTP/1.1 JSON transcoded from the google.api.http options of the
// protos (v2, v2beta3, Locations), with Google's proto3 JSON mapping (proto3-json-serializer over the
// protobufjs types, as the official client's own REST mode uses), `$alt=json;enum-encoding=int`,
// and Google's JSON error shape. Also the un-prefixed paths firebase-admin sends to
// CLOUD_TASKS_EMULATOR_HOST (`/projects/...`, no `/v2`).
import type * as http from 'node:http';
import { status } from '@grpc/grpc-js';
import { fromProto3JSON, toProto3JSON } from 'proto3-json-serializer';
import type * as protobuf from 'protobufjs';
import { cloudTasksV2beta3Handlers, cloudTasksV2Handlers, locationsHandlers, type ApiHandler, type HandlerTable } from './api.js';
import type { CloudTasksEngine } from './engine.js';
import { ApiError, invalidArgument } from './errors.js';
import { HANDLER_OBJECT_OPTIONS, protobufRoot } from './json-protos.js';
import type { EmulatorLogger } from './options.js';
import type { TaskMessage } from './proto-types.js';

/** HTTP status of each gRPC code, as Google's APIs map them (google.rpc.Code comments). */
const HTTP_STATUS_OF_CODE: Record<number, number> = {
  [status.OK]: 200,
  [status.CANCELLED]: 499,
  [status.UNKNOWN]: 500,
  [status.INVALID_ARGUMENT]: 400,
  [status.DEADLINE_EXCEEDED]: 504,
  [status.NOT_FOUND]: 404,
  [status.ALREADY_EXISTS]: 409,
  [status.PERMISSION_DENIED]: 403,
  [status.RESOURCE_EXHAUSTED]: 429,
  [status.FAILED_PRECONDITION]: 400,
  [status.ABORTED]: 409,
  [status.OUT_OF_RANGE]: 400,
  [status.UNIMPLEMENTED]: 501,
  [status.INTERNAL]: 500,
  [status.UNAVAILABLE]: 503,
  [status.DATA_LOSS]: 500,
  [status.UNAUTHENTICATED]: 401,
};

export function httpStatusOfCode(code: number): number {
  return HTTP_STATUS_OF_CODE[code] ?? 500;
}

interface Route {
  httpMethod: string;
  pattern: RegExp;
  /** Request field paths (camelCase, dotted) filled from the pattern's groups, in order. */
  variables: string[];
  /** '*' = the whole request, a field name = that field, undefined = no body (query parameters). */
  body: string | undefined;
  requestType: protobuf.Type;
  responseType: protobuf.Type;
  handler: ApiHandler;
  rpc: string;
}

interface HttpRule {
  get?: string;
  post?: string;
  patch?: string;
  put?: string;
  delete?: string;
  body?: string;
  additional_bindings?: HttpRule | HttpRule[];
}

const camel = (name: string): string => name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

/** A path template (`/v2/{parent=projects/*}/queues`, `...:run`) as a regular expression. */
function compileTemplate(template: string): { pattern: RegExp; variables: string[] } {
  const variables: string[] = [];
  let source = '';
  let rest = template;
  while (rest.length > 0) {
    const open = rest.indexOf('{');
    if (open < 0) {
      source += escapeRegExp(rest);
      break;
    }
    source += escapeRegExp(rest.slice(0, open));
    const close = rest.indexOf('}', open);
    const [field, segments = '*'] = rest.slice(open + 1, close).split('=', 2) as [string, string?];
    variables.push(field.split('.').map(camel).join('.'));
    source += `(${segments
      .split('/')
      .map((segment) => (segment === '**' ? '.+?' : segment === '*' ? '[^/]+?' : escapeRegExp(segment)))
      .join('/')})`;
    rest = rest.slice(close + 1);
  }
  return { pattern: new RegExp(`^${source}$`), variables };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function rulesOf(method: protobuf.Method): HttpRule[] {
  const options = (method.parsedOptions ?? []) as Array<Record<string, HttpRule>>;
  const rules: HttpRule[] = [];
  for (const option of options) {
    const rule = option['(google.api.http)'];
    if (!rule) continue;
    rules.push(rule);
    const extra = rule.additional_bindings;
    if (extra) rules.push(...(Array.isArray(extra) ? extra : [extra]));
  }
  return rules;
}

function routesFor(serviceName: string, table: HandlerTable, extraRules: Record<string, HttpRule[]> = {}): Route[] {
  const service = protobufRoot().lookupService(serviceName);
  const routes: Route[] = [];
  for (const method of service.methodsArray) {
    const handler = table[method.name];
    if (!handler) continue;
    method.resolve();
    for (const rule of [...rulesOf(method), ...(extraRules[method.name] ?? [])]) {
      for (const verb of ['get', 'post', 'patch', 'put', 'delete'] as const) {
        const template = rule[verb];
        if (!template) continue;
        const { pattern, variables } = compileTemplate(template);
        routes.push({
          httpMethod: verb.toUpperCase(),
          pattern,
          variables,
          body: rule.body,
          requestType: method.resolvedRequestType!,
          responseType: method.resolvedResponseType!,
          handler,
          rpc: `${serviceName}.${method.name}`,
        });
      }
    }
  }
  return routes;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

const SYSTEM_PARAMETERS = new Set(['$alt', 'alt', '$prettyPrint', 'prettyPrint', 'key', 'access_token', 'fields', '$fields', 'callback', '$callback']);
const NUMERIC_TYPES = new Set(['double', 'float', 'int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

/** A query parameter's text as the JSON value its field takes. */
function queryValue(type: protobuf.Type, path: string[], text: string): { value: unknown; repeated: boolean } {
  let current: protobuf.Type = type;
  for (let i = 0; i < path.length; i++) {
    const field = current.fields[path[i]!] ?? current.fields[camel(path[i]!)];
    if (!field) throw invalidArgument(`Invalid JSON payload received. Unknown name "${path.join('.')}": Cannot bind query parameter.`);
    field.resolve();
    if (i < path.length - 1) {
      if (!field.resolvedType || !('fields' in field.resolvedType)) {
        throw invalidArgument(`Invalid query parameter "${path.join('.')}".`);
      }
      current = field.resolvedType as protobuf.Type;
      continue;
    }
    let value: unknown = text;
    if (NUMERIC_TYPES.has(field.type)) value = Number(text);
    else if (field.type === 'bool') value = text === 'true';
    else if (field.resolvedType && !('fields' in field.resolvedType) && /^-?\d+$/.test(text)) value = Number(text);
    return { value, repeated: field.repeated };
  }
  return { value: text, repeated: false };
}

export interface RestSettings {
  engine: CloudTasksEngine;
  logger: EmulatorLogger;
  /** Fills the empty httpRequest.url of firebase-admin tasks: a template or a function of the queue. */
  functionUrl: ((queue: { project: string; location: string; queueId: string }) => string) | undefined;
  maxBodyBytes: number;
}

export class RestService {
  private readonly routes: Route[];

  constructor(private readonly settings: RestSettings) {
    const { engine } = settings;
    const locationRules = (prefix: string): Record<string, HttpRule[]> => ({
      ListLocations: [{ get: `/${prefix}/{name=projects/*}/locations` }],
      GetLocation: [{ get: `/${prefix}/{name=projects/*/locations/*}` }],
    });
    const routes = [
      ...routesFor('google.cloud.tasks.v2.CloudTasks', cloudTasksV2Handlers(engine)),
      ...routesFor('google.cloud.tasks.v2beta3.CloudTasks', cloudTasksV2beta3Handlers(engine)),
      ...routesFor('google.cloud.location.Locations', locationsHandlers(engine), {
        ...locationRules('v2'),
        ListLocations: [...locationRules('v2').ListLocations!, ...locationRules('v2beta3').ListLocations!],
        GetLocation: [...locationRules('v2').GetLocation!, ...locationRules('v2beta3').GetLocation!],
      }),
    ];
    // Custom verbs (`...:run`) first: a plain `*` segment would also match "t:run".
    this.routes = routes.sort((a, b) => Number(/:\w+\$$/.test(b.pattern.source)) - Number(/:\w+\$$/.test(a.pattern.source)));
  }

  /** The http.Server request listener. */
  readonly listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > this.settings.maxBodyBytes) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) {
        this.sendError(res, invalidArgument('Request payload size exceeds the limit.'), false);
        return;
      }
      this.handle(req, Buffer.concat(chunks), res);
    });
    req.on('error', () => res.destroy());
  };

  private handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const numericEnums = /enum-encoding=int/.test(url.searchParams.get('$alt') ?? url.searchParams.get('alt') ?? '');
    const method = (req.method ?? 'GET').toUpperCase();
    try {
      let path: string;
      try {
        path = decodeURI(url.pathname);
      } catch {
        throw invalidArgument(`The path ${url.pathname} is not valid percent-encoding.`);
      }
      // firebase-admin talks to CLOUD_TASKS_EMULATOR_HOST without the version prefix.
      const firebase = path.startsWith('/projects/');
      if (firebase) path = `/v2${path}`;
      let match: RegExpExecArray | null = null;
      const route = this.routes.find((r) => r.httpMethod === method && (match = r.pattern.exec(path)) !== null);
      if (!route || !match) {
        throw new ApiError(status.NOT_FOUND, `The requested URL ${method} ${url.pathname} was not found on this server.`);
      }
      const groups: RegExpExecArray = match;
      const json = this.requestJson(route, groups, url, body);
      if (firebase && route.rpc.endsWith('v2.CloudTasks.CreateTask')) this.prepareFirebaseTask(json);
      const message = this.decode(route.requestType, json);
      const request = route.requestType.toObject(message, HANDLER_OBJECT_OPTIONS);
      const requestBytes = route.rpc.endsWith('.CreateTask') ? route.requestType.encode(message).finish().length : 0;
      const reply = route.handler(request, { requestBytes });
      const replyJson = toProto3JSON(route.responseType.fromObject(reply), { numericEnums }) ?? {};
      const text = JSON.stringify(replyJson);
      res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) }).end(text);
    } catch (error) {
      this.sendError(res, error, true);
    }
  }

  private requestJson(route: Route, groups: RegExpExecArray, url: URL, body: Buffer): Record<string, unknown> {
    let json: Record<string, unknown> = {};
    if (route.body !== undefined && body.length > 0) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch (error) {
        throw invalidArgument(`Invalid JSON payload received. ${error instanceof Error ? error.message : String(error)}`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw invalidArgument('Invalid JSON payload received. Expected an object.');
      }
      if (route.body === '*') json = parsed as Record<string, unknown>;
      else json[camel(route.body)] = parsed;
    }
    if (route.body !== '*') {
      for (const [key, text] of url.searchParams) {
        if (SYSTEM_PARAMETERS.has(key)) continue;
        const fieldPath = key.split('.').map(camel);
        const { value, repeated } = queryValue(route.requestType, fieldPath, text);
        if (repeated) {
          const parts = fieldPath.join('.');
          const existing = parts.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], json);
          setPath(json, parts, [...((existing as unknown[] | undefined) ?? []), value]);
        } else {
          setPath(json, fieldPath.join('.'), value);
        }
      }
    }
    route.variables.forEach((variable, index) => setPath(json, variable, decodeURIComponent(groups[index + 1]!)));
    return json;
  }

  private decode(type: protobuf.Type, json: Record<string, unknown>): protobuf.Message {
    let message: protobuf.Message | null;
    try {
      message = fromProto3JSON(type, json as Parameters<typeof fromProto3JSON>[1]);
    } catch (error) {
      throw invalidArgument(`Invalid JSON payload received. ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!message) throw invalidArgument('Invalid JSON payload received.');
    return message;
  }

  /** firebase-admin: the queue is the function's (created on first use) and an empty url means the function. */
  private prepareFirebaseTask(json: Record<string, unknown>): void {
    const parent = String(json['parent'] ?? '');
    const match = /^projects\/([^/]+)\/locations\/([^/]+)\/queues\/([^/]+)$/.exec(parent);
    if (match && !this.settings.engine.hasQueue(parent)) {
      this.settings.engine.updateQueue({ name: parent }, []);
      this.settings.logger.info?.(`queue ${parent} created for a firebase-admin task`);
    }
    const task = json['task'] as TaskMessage | undefined;
    const httpRequest = task?.httpRequest as { url?: string } | undefined;
    if (match && httpRequest && !httpRequest.url) {
      if (!this.settings.functionUrl) {
        throw invalidArgument(
          'HttpRequest.url is empty (firebase-admin leaves it to the emulator): start the emulator with ' +
            'functionUrlBase (CLI: --function-url-base URL), or pass `uri` to enqueue().',
        );
      }
      httpRequest.url = this.settings.functionUrl({ project: match[1]!, location: match[2]!, queueId: match[3]! });
    }
  }

  private sendError(res: http.ServerResponse, error: unknown, log: boolean): void {
    let code: number = status.INTERNAL;
    let message = 'Internal error.';
    if (error instanceof ApiError) {
      code = error.code;
      message = error.message;
    } else if (log) {
      this.settings.logger.error?.(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
    const httpStatus = httpStatusOfCode(code);
    const text = JSON.stringify({ error: { code: httpStatus, message, status: status[code] } });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(httpStatus, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) }).end(text);
  }
}
