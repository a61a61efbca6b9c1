/**
 * The envelope a Cloud Task carries: which task, which record, and the arguments inline or a
 * reference to the PayloadStore. Versioned; decoding ignores unknown top-level fields.
 */
import { bytesToText, invalid, parseJson } from './json-bytes.js';

export const ENVELOPE_VERSION = 1 as const;

/** The content type of the envelope; not application/json, so body parsers leave it alone. */
export const ENVELOPE_CONTENT_TYPE = 'application/vnd.cloud-defer+json';

const hasOwn = Object.hasOwn;
const ObjectProto = Object.prototype;

export type EnvelopeMeta = Record<string, string | number | boolean>;

export interface EnvelopeInput {
  task: string;
  id: string;
  /** Output of `encodeArgs`, embedded inline. Give this or `payloadRef`, not both. */
  args?: Uint8Array;
  /**
   * The same as text, straight from this codec's `encodeArgs` (trusted: not re-parsed). The
   * engine's hot path already has the text, so it saves a decode and a parse per defer.
   */
  argsText?: string;
  payloadRef?: string;
  meta?: EnvelopeMeta;
}

export interface Envelope {
  v: typeof ENVELOPE_VERSION;
  task: string;
  id: string;
  payloadRef?: string;
  meta?: EnvelopeMeta;
  /** Still-encoded inline args; decode with `codec.decodeArgsTree` once the task is known. */
  argsTree?: unknown[];
}

// Envelope: {"v":1,"task":..,"id":..,"payloadRef"?:..,"meta"?:{..},"args"?:[tree..]}
// Header fields come first and args last, so the engine can read them before decoding args.

function checkHeader(e: Record<string, unknown>): void {
  if (typeof e.task !== 'string' || e.task === '') throw invalid('envelope "task" must be a non-empty string');
  if (typeof e.id !== 'string' || e.id === '') throw invalid('envelope "id" must be a non-empty string');
  if (e.payloadRef !== undefined && (typeof e.payloadRef !== 'string' || e.payloadRef === '')) {
    throw invalid('envelope "payloadRef" must be a non-empty string');
  }
  if (e.payloadRef !== undefined && e.args !== undefined) throw invalid('envelope has both inline "args" and a "payloadRef"');
  const meta = e.meta;
  if (meta === undefined) return;
  const proto: unknown = meta !== null && typeof meta === 'object' ? Object.getPrototypeOf(meta) : undefined;
  if ((proto !== ObjectProto && proto !== null) || Array.isArray(meta)) throw invalid('envelope "meta" must be an object');
  for (const key in meta as object) {
    if (!hasOwn(meta as object, key)) continue;
    const value: unknown = (meta as Record<string, unknown>)[key];
    if (typeof value !== 'string' && typeof value !== 'boolean' && !(typeof value === 'number' && Number.isFinite(value))) {
      throw invalid(`envelope meta ${JSON.stringify(key)} must be a string, finite number or boolean`);
    }
  }
}

export function encodeEnvelope(e: EnvelopeInput): Uint8Array {
  if (e === null || typeof e !== 'object') throw invalid('envelope must be an object');
  checkHeader(e as unknown as Record<string, unknown>);
  let json = `{"v":${ENVELOPE_VERSION},"task":${JSON.stringify(e.task)},"id":${JSON.stringify(e.id)}`;
  if (e.payloadRef !== undefined) json += `,"payloadRef":${JSON.stringify(e.payloadRef)}`;
  if (e.meta !== undefined) json += `,"meta":${JSON.stringify(e.meta)}`;
  if (e.argsText !== undefined) {
    json += `,"args":${e.argsText}`;
  } else if (e.args !== undefined) {
    const text = bytesToText(e.args);
    // Parsing proves the text is exactly one JSON array, so splicing it in cannot add keys.
    if (!Array.isArray(parseJson(text))) throw invalid('envelope "args" must be encoded args (a JSON array)');
    json += `,"args":${text}`;
  }
  return Buffer.from(json + '}', 'utf8');
}

export function decodeEnvelope(bytes: Uint8Array): Envelope {
  const raw = parseJson(bytesToText(bytes));
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw invalid('envelope must be a JSON object');
  const e = raw as Record<string, unknown>;
  if (e.v !== ENVELOPE_VERSION) throw invalid(`unsupported envelope version ${JSON.stringify(e.v) ?? 'undefined'}; this build reads v${ENVELOPE_VERSION}`);
  checkHeader(e);
  if (e.args !== undefined && !Array.isArray(e.args)) throw invalid('envelope "args" must be an array');
  // Unknown top-level fields are ignored so a newer writer can add optional ones within v1.
  const out: Envelope = { v: ENVELOPE_VERSION, task: e.task as string, id: e.id as string };
  if (e.payloadRef !== undefined) out.payloadRef = e.payloadRef as string;
  if (e.meta !== undefined) out.meta = e.meta as EnvelopeMeta;
  if (e.args !== undefined) out.argsTree = e.args as unknown[];
  return out;
}
