import { existsSync } from 'node:fs';
import path from 'node:path';
import { Enum, type Field, MapField, Root, type Type, type Message } from 'protobufjs';

/**
 * The official Vertex AI v1beta1 message definitions (the `.proto` files `@google-cloud/aiplatform`
 * ships, with their google/api, google/rpc, google/longrunning and google/protobuf imports from
 * google-gax), Cloud Monitoring v3's (from `@google-cloud/monitoring`), Cloud Quotas v1's (from
 * `@google-cloud/cloudquotas`), Cloud Logging v2's (from `@google-cloud/logging-api`), and a
 * proto3-JSON checker over them: the emulator uses it to accept exactly what Google's JSON
 * transcoding accepts, and tests use it to prove request/response bodies are valid.
 */

const SERVICE_FILES = [
  ...['model_garden_service', 'endpoint_service', 'model_service', 'prediction_service', 'operation'].map(
    (name) => `google/cloud/aiplatform/v1beta1/${name}.proto`,
  ),
  // The google.rpc.Status detail messages (ErrorInfo, BadRequest, RetryInfo, ...).
  'google/rpc/error_details.proto',
  'google/monitoring/v3/metric_service.proto',
  'google/api/cloudquotas/v1/cloudquotas.proto',
  'google/logging/v2/logging.proto',
];

export const V1BETA1 = 'google.cloud.aiplatform.v1beta1';

let cachedRoot: Root | undefined;

function protoSearchPath(): string[] {
  const aiplatform = path.dirname(require.resolve('@google-cloud/aiplatform/package.json'));
  const packages = ['monitoring', 'cloudquotas', 'logging-api'].map((name) =>
    path.dirname(require.resolve(`@google-cloud/${name}/package.json`)),
  );
  // google-gax exports no package.json; its protos sit at build/protos next to build/src.
  const gax = path.resolve(require.resolve('google-gax', { paths: [aiplatform] }), '../../protos');
  return [aiplatform, ...packages].map((dir) => path.join(dir, 'build', 'protos')).concat(gax);
}

/** The loaded protos (v1beta1, Monitoring v3, Cloud Quotas v1, Logging v2), field names as written in the .proto files (snake_case). */
export function vertexProtoRoot(): Root {
  if (cachedRoot) return cachedRoot;
  const searchPath = protoSearchPath();
  const root = new Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of searchPath) {
      const candidate = path.join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  root.loadSync(SERVICE_FILES, { keepCase: true });
  root.resolveAll();
  cachedRoot = root;
  return root;
}

export function lookupMessageType(typeName: string): Type {
  return vertexProtoRoot().lookupType(typeName.replace(/^\./, ''));
}

/** One problem in a JSON body; `field` is the proto path (`deploy_config.dedicated_resources`). */
export interface FieldViolation {
  field: string;
  description: string;
}

export type ProtoJsonCheck =
  { ok: true; value: Record<string, unknown> } | { ok: false; violations: FieldViolation[] };

export interface ProtoJsonOptions {
  /** Top-level fields that come from the URL path and may be absent or must not be checked here. */
  maxDepth?: number;
  maxNodes?: number;
}

/** proto3 JSON name of a field: `json_name` if declared, else protoc's lowerCamelCase rule. */
export function jsonNameOf(field: Field): string {
  return field.jsonName ?? field.name.replace(/_(.)/g, (_m, c: string) => c.toUpperCase());
}

/** The proto (snake_case) name of a lowerCamelCase JSON field name, as error messages name fields. */
export function protoFieldName(json: string): string {
  return json.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

const WKT_PREFIX = 'google.protobuf.';
const INT32_TYPES = new Set(['int32', 'sint32', 'sfixed32']);
const UINT32_TYPES = new Set(['uint32', 'fixed32']);
const INT64_TYPES = new Set(['int64', 'sint64', 'sfixed64']);
const UINT64_TYPES = new Set(['uint64', 'fixed64']);
const WRAPPERS: Record<string, string> = {
  DoubleValue: 'double',
  FloatValue: 'float',
  Int64Value: 'int64',
  UInt64Value: 'uint64',
  Int32Value: 'int32',
  UInt32Value: 'uint32',
  BoolValue: 'bool',
  StringValue: 'string',
  BytesValue: 'bytes',
};
const DURATION_RE = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;
const TIMESTAMP_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;
const MAX_DURATION_SECONDS = 315_576_000_000n;

/** Milliseconds of a proto3-JSON Duration already checked by `checkProtoJson` (`"300s"`, `"1.5s"`). */
export function durationMs(duration: string): number {
  return Math.round(Number(duration.slice(0, -1)) * 1000);
}

class Walker {
  readonly violations: FieldViolation[] = [];
  private nodes = 0;

  constructor(
    private readonly maxDepth: number,
    private readonly maxNodes: number,
  ) {}

  fail(field: string, description: string): undefined {
    if (this.violations.length < 50) this.violations.push({ field, description });
    return undefined;
  }

  tooBig(fieldPath: string, depth: number): boolean {
    this.nodes += 1;
    if (depth > this.maxDepth) {
      this.fail(fieldPath, `Invalid JSON payload received. Nesting deeper than ${this.maxDepth} levels.`);
      return true;
    }
    if (this.nodes > this.maxNodes) {
      this.fail(fieldPath, `Invalid JSON payload received. More than ${this.maxNodes} values.`);
      return true;
    }
    return false;
  }

  /** Returns the canonical proto3 JSON of `value` as a message of `type`, or undefined on error. */
  message(type: Type, value: unknown, at: string, depth: number): unknown {
    if (this.tooBig(at, depth)) return undefined;
    const fullName = type.fullName.replace(/^\./, '');
    if (fullName.startsWith(WKT_PREFIX)) return this.wellKnown(type, fullName, value, at, depth);
    if (value === null) return null;
    if (typeof value !== 'object' || Array.isArray(value)) {
      return this.fail(at, `Invalid value at '${at}' (type.googleapis.com/${fullName}), ${preview(value)}`);
    }
    const out: Record<string, unknown> = {};
    const seen = new Map<string, string>(); // proto field name -> JSON key used
    const oneofSet = new Map<string, string>(); // oneof name -> JSON key used
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
      const field = findField(type, key);
      if (!field) {
        this.fail(
          at,
          at
            ? `Invalid JSON payload received. Unknown name "${key}" at '${at}': Cannot find field.`
            : `Invalid JSON payload received. Unknown name "${key}": Cannot find field.`,
        );
        continue;
      }
      const childPath = at ? `${at}.${field.name}` : field.name;
      const previous = seen.get(field.name);
      if (previous !== undefined) {
        this.fail(
          childPath,
          `Invalid JSON payload received. Field '${childPath}' is set twice (as "${previous}" and "${key}").`,
        );
        continue;
      }
      seen.set(field.name, key);
      if (child === null && !isValueType(field)) continue; // proto3 JSON: null means "not set"
      const oneof = field.partOf;
      if (oneof && !isSyntheticOneof(oneof.name, oneof.oneof)) {
        const other = oneofSet.get(oneof.name);
        if (other !== undefined) {
          this.fail(
            childPath,
            `Invalid JSON payload received. Oneof field '${oneof.name}' is already set. Cannot set '${key}'.`,
          );
          continue;
        }
        oneofSet.set(oneof.name, key);
      }
      const converted = this.field(field, child, childPath, depth + 1);
      if (converted !== undefined) out[jsonNameOf(field)] = converted;
    }
    return out;
  }

  private field(field: Field, value: unknown, at: string, depth: number): unknown {
    if (field instanceof MapField) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        return this.fail(at, `Invalid value at '${at}' (map), ${preview(value)}`);
      }
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
        const entryPath = `${at}[${key}]`;
        if (this.tooBig(entryPath, depth)) return undefined;
        if (!validMapKey(field.keyType, key)) {
          this.fail(
            entryPath,
            `Invalid map key at '${entryPath}' (TYPE_${field.keyType.toUpperCase()}), "${key}"`,
          );
          continue;
        }
        const converted = this.single(field, child, entryPath, depth + 1);
        if (converted !== undefined) out[key] = converted;
      }
      return out;
    }
    if (field.repeated) {
      if (!Array.isArray(value)) {
        return this.fail(at, `Invalid value at '${at}' (repeated ${typeLabel(field)}), ${preview(value)}`);
      }
      const out: unknown[] = [];
      value.forEach((item, index) => {
        const converted = this.single(field, item, `${at}[${index}]`, depth + 1);
        if (converted !== undefined) out.push(converted);
      });
      return out;
    }
    if (Array.isArray(value) && !isValueType(field)) {
      const parent = at.includes('.') ? at.slice(0, at.lastIndexOf('.')) : '';
      const name = at.slice(at.lastIndexOf('.') + 1);
      return this.fail(
        at,
        `Invalid JSON payload received. Unknown name "${name}" at '${parent}': Proto field is not repeating, cannot start list.`,
      );
    }
    return this.single(field, value, at, depth);
  }

  private single(field: Field, value: unknown, at: string, depth: number): unknown {
    const resolved = field.resolvedType;
    if (resolved instanceof Enum) return this.enumValue(resolved, value, at);
    if (resolved) return this.message(resolved as Type, value, at, depth);
    return this.scalar(field.type, value, at);
  }

  private enumValue(type: Enum, value: unknown, at: string): unknown {
    const fullName = type.fullName.replace(/^\./, '');
    if (typeof value === 'string' && Object.prototype.hasOwnProperty.call(type.values, value)) return value;
    if (typeof value === 'number' && Number.isInteger(value)) {
      const name = type.valuesById[value];
      if (name !== undefined) return name;
    }
    return this.fail(at, `Invalid value at '${at}' (type.googleapis.com/${fullName}), ${preview(value)}`);
  }

  scalar(kind: string, value: unknown, at: string): unknown {
    const bad = () =>
      this.fail(at, `Invalid value at '${at}' (TYPE_${kind.toUpperCase()}), ${preview(value)}`);
    switch (kind) {
      case 'string':
        return typeof value === 'string' ? value : bad();
      case 'bool':
        if (typeof value === 'boolean') return value;
        // ESF accepts the string forms (Google's own samples send "true").
        if (value === 'true' || value === 'false') return value === 'true';
        return bad();
      case 'bytes':
        return typeof value === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(value) ? value : bad();
      case 'double':
      case 'float':
        if (typeof value === 'number' && Number.isFinite(value)) return value;
        if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') return value;
        if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)))
          return Number(value);
        return bad();
      default: {
        const integer = parseInteger(value);
        if (integer === undefined) return bad();
        if (INT32_TYPES.has(kind) && (integer < -(2n ** 31n) || integer >= 2n ** 31n)) return bad();
        if (UINT32_TYPES.has(kind) && (integer < 0n || integer >= 2n ** 32n)) return bad();
        if (INT64_TYPES.has(kind) && (integer < -(2n ** 63n) || integer >= 2n ** 63n)) return bad();
        if (UINT64_TYPES.has(kind) && (integer < 0n || integer >= 2n ** 64n)) return bad();
        // proto3 JSON prints 64-bit integers as strings and 32-bit ones as numbers.
        return INT64_TYPES.has(kind) || UINT64_TYPES.has(kind) ? integer.toString() : Number(integer);
      }
    }
  }

  private wellKnown(type: Type, fullName: string, value: unknown, at: string, depth: number): unknown {
    const short = fullName.slice(WKT_PREFIX.length);
    const bad = () =>
      this.fail(at, `Invalid value at '${at}' (type.googleapis.com/${fullName}), ${preview(value)}`);
    if (short in WRAPPERS) return value === null ? null : this.scalar(WRAPPERS[short]!, value, at);
    switch (short) {
      case 'Duration': {
        const match = typeof value === 'string' ? DURATION_RE.exec(value) : null;
        if (!match || BigInt(match[2]!) > MAX_DURATION_SECONDS) return bad();
        return value;
      }
      case 'Timestamp':
        return typeof value === 'string' && TIMESTAMP_RE.test(value) && !Number.isNaN(Date.parse(value))
          ? value
          : bad();
      case 'FieldMask':
        return typeof value === 'string' && /^[A-Za-z0-9_.,]*$/.test(value) ? value : bad();
      case 'Empty':
        return isPlainObject(value) && Object.keys(value).length === 0 ? {} : bad();
      case 'Struct':
        return isPlainObject(value) ? this.anyJson(value, at, depth) : bad();
      case 'ListValue':
        return Array.isArray(value) ? this.anyJson(value, at, depth) : bad();
      case 'Value':
        return this.anyJson(value, at, depth);
      case 'NullValue':
        return value === null || value === 'NULL_VALUE' ? null : bad();
      case 'Any':
        return this.any(value, at, depth);
      default:
        return this.message(type, value, at, depth);
    }
  }

  private anyJson(value: unknown, at: string, depth: number): unknown {
    if (this.tooBig(at, depth)) return undefined;
    if (Array.isArray(value)) return value.map((item, i) => this.anyJson(item, `${at}[${i}]`, depth + 1));
    if (isPlainObject(value)) {
      const out: Record<string, unknown> = {};
      for (const [key, child] of Object.entries(value))
        out[key] = this.anyJson(child, `${at}.${key}`, depth + 1);
      return out;
    }
    if (typeof value === 'number' && !Number.isFinite(value)) {
      return this.fail(at, `Invalid value at '${at}' (type.googleapis.com/google.protobuf.Value), ${value}`);
    }
    return value;
  }

  private any(value: unknown, at: string, depth: number): unknown {
    if (!isPlainObject(value) || typeof value['@type'] !== 'string') {
      return this.fail(
        at,
        `Invalid value at '${at}' (type.googleapis.com/google.protobuf.Any): "@type" is required`,
      );
    }
    const typeUrl = value['@type'];
    const typeName = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
    let inner: Type;
    try {
      inner = vertexProtoRoot().lookupType(typeName);
    } catch {
      return this.fail(
        at,
        `Invalid value at '${at}' (type.googleapis.com/google.protobuf.Any): unknown type "${typeUrl}"`,
      );
    }
    const { '@type': _ignored, ...rest } = value;
    const innerName = inner.fullName.replace(/^\./, '');
    const special = innerName.startsWith(WKT_PREFIX) && !('fields' in rest && innerName.endsWith('Struct'));
    const converted = special
      ? this.message(inner, rest.value, `${at}.value`, depth + 1)
      : this.message(inner, rest, at, depth + 1);
    if (converted === undefined) return undefined;
    return special ? { '@type': typeUrl, value: converted } : { '@type': typeUrl, ...(converted as object) };
  }
}

function findField(type: Type, key: string): Field | undefined {
  const direct = type.fields[key];
  if (direct) return direct;
  return type.fieldsArray.find((f) => jsonNameOf(f) === key);
}

function isSyntheticOneof(name: string, members: string[]): boolean {
  return name.startsWith('_') && members.length === 1;
}

function isValueType(field: Field): boolean {
  const resolved = field.resolvedType;
  return !!resolved && /^\.?google\.protobuf\.(Value|NullValue)$/.test(resolved.fullName);
}

function typeLabel(field: Field): string {
  return field.resolvedType
    ? field.resolvedType.fullName.replace(/^\./, '')
    : `TYPE_${field.type.toUpperCase()}`;
}

function validMapKey(keyType: string, key: string): boolean {
  if (keyType === 'string') return true;
  if (keyType === 'bool') return key === 'true' || key === 'false';
  return /^-?\d+$/.test(key);
}

function parseInteger(value: unknown): bigint | undefined {
  if (typeof value === 'number') return Number.isInteger(value) ? BigInt(value) : undefined;
  if (typeof value !== 'string' || !/^-?\d+(\.0*)?$|^-?\d+(\.\d+)?[eE]\+?\d+$/.test(value)) return undefined;
  if (/[eE]/.test(value)) {
    const n = Number(value);
    return Number.isSafeInteger(n) ? BigInt(n) : undefined;
  }
  return BigInt(value.replace(/\.0*$/, ''));
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * Checks `value` as the proto3 JSON of message `typeName` the way Google's JSON transcoding does:
 * both the proto (snake_case) and JSON (lowerCamelCase) field names are accepted, enums by name
 * (or number), 64-bit integers as strings or numbers, well-known types in their JSON forms.
 * On success returns the canonical JSON (lowerCamelCase, int64 as strings, enums as names).
 */
export function checkProtoJson(
  typeName: string,
  value: unknown,
  options: ProtoJsonOptions = {},
): ProtoJsonCheck {
  const walker = new Walker(options.maxDepth ?? 64, options.maxNodes ?? 100_000);
  const type = lookupMessageType(typeName);
  if (!isPlainObject(value)) {
    walker.fail(
      '',
      `Invalid JSON payload received. Expected an object for ${type.name}, got ${preview(value)}.`,
    );
    return { ok: false, violations: walker.violations };
  }
  const result = walker.message(type, value, '', 0);
  if (walker.violations.length > 0 || !isPlainObject(result))
    return { ok: false, violations: walker.violations };
  return { ok: true, value: result };
}

/** Like `checkProtoJson` but throws a `ProtoJsonError` naming the first violation. */
export function parseProtoJson(
  typeName: string,
  value: unknown,
  options?: ProtoJsonOptions,
): Record<string, unknown> {
  const result = checkProtoJson(typeName, value, options);
  if (!result.ok) throw new ProtoJsonError(typeName, result.violations);
  return result.value;
}

export class ProtoJsonError extends Error {
  override readonly name = 'ProtoJsonError';
  constructor(
    readonly typeName: string,
    readonly violations: FieldViolation[],
  ) {
    super(violations.map((v) => v.description).join('\n'));
  }
}

// ---------------------------------------------------------------------------------------------
// Binary round trip: canonical proto3 JSON -> protobufjs message -> wire bytes -> JSON again.

/**
 * Encodes a JSON body as the binary message `typeName` and decodes it back to canonical proto3
 * JSON. A body whose every field exists in the official types comes back equal to
 * `parseProtoJson(typeName, body)`; anything the types cannot carry is lost or rejected.
 */
export function roundTripProtoJson(typeName: string, value: unknown): Record<string, unknown> {
  const canonical = parseProtoJson(typeName, value);
  const type = lookupMessageType(typeName);
  const object = toProtobufObject(type, canonical) as Record<string, unknown>;
  const bytes = type.encode(type.fromObject(object)).finish();
  const decoded = type.decode(bytes);
  return fromProtobufMessage(type, decoded) as Record<string, unknown>;
}

function toProtobufObject(type: Type, json: unknown): unknown {
  const fullName = type.fullName.replace(/^\./, '');
  if (fullName.startsWith(WKT_PREFIX)) return wktToObject(fullName.slice(WKT_PREFIX.length), json);
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const value = (json as Record<string, unknown>)[jsonNameOf(field)];
    if (value === undefined) continue;
    const convert = (v: unknown) =>
      field.resolvedType instanceof Enum || !field.resolvedType
        ? v
        : toProtobufObject(field.resolvedType as Type, v);
    if (field instanceof MapField) {
      out[field.name] = Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, convert(v)]));
    } else if (field.repeated) out[field.name] = (value as unknown[]).map(convert);
    else out[field.name] = convert(value);
  }
  return out;
}

function wktToObject(short: string, json: unknown): unknown {
  if (short in WRAPPERS) return { value: json };
  switch (short) {
    case 'Duration': {
      const [, sign, seconds, fraction] = DURATION_RE.exec(json as string)!;
      const nanos = Number((fraction ?? '').padEnd(9, '0'));
      return { seconds: `${sign ?? ''}${seconds}`, nanos: sign ? -nanos : nanos };
    }
    case 'Timestamp': {
      const ms = Date.parse(json as string);
      const fraction = /\.(\d+)/.exec(json as string)?.[1] ?? '';
      return {
        seconds: Math.floor(ms / 1000).toString(),
        nanos: Number(fraction.padEnd(9, '0').slice(0, 9)),
      };
    }
    case 'FieldMask':
      return { paths: (json as string) === '' ? [] : (json as string).split(',') };
    case 'Empty':
      return {};
    case 'Struct':
      return {
        fields: Object.fromEntries(Object.entries(json as object).map(([k, v]) => [k, valueToObject(v)])),
      };
    case 'ListValue':
      return { values: (json as unknown[]).map(valueToObject) };
    case 'Value':
      return valueToObject(json);
    case 'Any': {
      const { '@type': typeUrl, ...rest } = json as Record<string, unknown>;
      const inner = vertexProtoRoot().lookupType(
        (typeUrl as string).slice((typeUrl as string).lastIndexOf('/') + 1),
      );
      const innerJson = inner.fullName.startsWith(`.${WKT_PREFIX}`) ? rest.value : rest;
      const bytes = inner.encode(inner.fromObject(toProtobufObject(inner, innerJson) as object)).finish();
      return { [wktKey('Any', 'type_url')]: typeUrl, value: bytes };
    }
    default:
      throw new Error(`unsupported well-known type ${short}`);
  }
}

/** protobufjs's bundled well-known types mix snake_case and camelCase field names. */
function wktKey(short: string, snake: string): string {
  const type = lookupMessageType(`${WKT_PREFIX}${short}`);
  return type.fields[snake] ? snake : snake.replace(/_(.)/g, (_m, c: string) => c.toUpperCase());
}

function valueToObject(value: unknown): unknown {
  const key = (snake: string) => wktKey('Value', snake);
  if (value === null) return { [key('null_value')]: 0 };
  if (typeof value === 'number') return { [key('number_value')]: value };
  if (typeof value === 'string') return { [key('string_value')]: value };
  if (typeof value === 'boolean') return { [key('bool_value')]: value };
  if (Array.isArray(value)) return { [key('list_value')]: { values: value.map(valueToObject) } };
  return { [key('struct_value')]: wktToObject('Struct', value) };
}

function fromProtobufMessage(type: Type, message: Message | Record<string, unknown>): unknown {
  const fullName = type.fullName.replace(/^\./, '');
  const plain = message as unknown as Record<string, unknown>;
  if (fullName.startsWith(WKT_PREFIX)) return wktFromMessage(fullName.slice(WKT_PREFIX.length), plain);
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    // Decoded messages own exactly the fields that were on the wire.
    if (!Object.prototype.hasOwnProperty.call(plain, field.name)) continue;
    const value = plain[field.name];
    if (value === undefined || value === null) continue;
    const resolved = field.resolvedType;
    const convert = (v: unknown): unknown => {
      if (resolved instanceof Enum) return resolved.valuesById[v as number] ?? v;
      if (resolved) return fromProtobufMessage(resolved as Type, v as Record<string, unknown>);
      return scalarFromMessage(field.type, v);
    };
    const name = jsonNameOf(field);
    if (field instanceof MapField) {
      const entries = Object.entries(value as object);
      if (entries.length) out[name] = Object.fromEntries(entries.map(([k, v]) => [k, convert(v)]));
    } else if (field.repeated) {
      if ((value as unknown[]).length) out[name] = (value as unknown[]).map(convert);
    } else if (resolved && !(resolved instanceof Enum)) {
      out[name] = convert(value);
    } else if (field.partOf || !isDefaultScalar(value)) {
      // Oneof members and proto3 `optional` fields keep explicit defaults; others omit them.
      out[name] = convert(value);
    }
  }
  return out;
}

function isDefaultScalar(value: unknown): boolean {
  if (value instanceof Uint8Array) return value.length === 0;
  return value === '' || value === false || String(value) === '0';
}

function scalarFromMessage(kind: string, value: unknown): unknown {
  if (INT64_TYPES.has(kind) || UINT64_TYPES.has(kind)) return String(value);
  if (kind === 'bytes') return Buffer.from(value as Uint8Array).toString('base64');
  return value;
}

function wktFromMessage(short: string, message: Record<string, unknown>): unknown {
  if (short in WRAPPERS)
    return scalarFromMessage(WRAPPERS[short]!, message.value ?? defaultScalar(WRAPPERS[short]!));
  switch (short) {
    case 'Duration': {
      const seconds = BigInt(String(message.seconds ?? 0));
      const nanos = Number(message.nanos ?? 0);
      const negative = seconds < 0n || nanos < 0;
      const abs = (seconds < 0n ? -seconds : seconds).toString();
      const fraction = nanos ? `.${String(Math.abs(nanos)).padStart(9, '0').replace(/0+$/, '')}` : '';
      return `${negative ? '-' : ''}${abs}${fraction}s`;
    }
    case 'Timestamp': {
      const seconds = Number(String(message.seconds ?? 0));
      const nanos = Number(message.nanos ?? 0);
      const base = new Date(seconds * 1000).toISOString().slice(0, 19);
      const fraction = nanos ? `.${String(nanos).padStart(9, '0').replace(/0+$/, '')}` : '';
      return `${base}${fraction}Z`;
    }
    case 'FieldMask':
      return ((message.paths as string[] | undefined) ?? []).join(',');
    case 'Empty':
      return {};
    case 'Struct':
      return Object.fromEntries(
        Object.entries((message.fields as Record<string, Record<string, unknown>>) ?? {}).map(([k, v]) => [
          k,
          valueFromMessage(v),
        ]),
      );
    case 'ListValue':
      return ((message.values as Record<string, unknown>[]) ?? []).map(valueFromMessage);
    case 'Value':
      return valueFromMessage(message);
    case 'Any': {
      const typeUrl = String(message[wktKey('Any', 'type_url')]);
      const inner = vertexProtoRoot().lookupType(typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
      const decoded = fromProtobufMessage(inner, inner.decode(message.value as Uint8Array));
      return inner.fullName.startsWith(`.${WKT_PREFIX}`)
        ? { '@type': typeUrl, value: decoded }
        : { '@type': typeUrl, ...(decoded as object) };
    }
    default:
      throw new Error(`unsupported well-known type ${short}`);
  }
}

function valueFromMessage(message: Record<string, unknown>): unknown {
  const get = (snake: string) => {
    const key = wktKey('Value', snake);
    return Object.prototype.hasOwnProperty.call(message, key) ? message[key] : undefined;
  };
  for (const kind of ['string_value', 'number_value', 'bool_value'] as const) {
    const value = get(kind);
    if (value != null) return value;
  }
  const struct = get('struct_value');
  if (struct != null) return wktFromMessage('Struct', struct as Record<string, unknown>);
  const list = get('list_value');
  if (list != null) return wktFromMessage('ListValue', list as Record<string, unknown>);
  return null;
}

function defaultScalar(kind: string): unknown {
  if (kind === 'string') return '';
  if (kind === 'bool') return false;
  if (kind === 'bytes') return new Uint8Array();
  return 0;
}
