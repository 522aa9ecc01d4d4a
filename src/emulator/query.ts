import { Enum, MapField, type Type } from 'protobufjs';
import { badRequest } from './errors';
import { MANAGEMENT_BODY_LIMIT, type RequestContext, parseJsonBody, readBody } from './http';
import { checkProtoJson, jsonNameOf, lookupMessageType } from './protos';

/** Query parameters every Google API accepts besides the request message's own fields. */
const SYSTEM_PARAMETERS = new Set([
  'alt',
  '$alt',
  'key',
  'fields',
  '$fields',
  'prettyPrint',
  'quotaUser',
  'callback',
  '$callback',
  'access_token',
  'upload_protocol',
  'uploadType',
  '$.xgafv',
]);

/** Messages that HTTP transcoding binds from one string (`interval.startTime=2026-…Z`). */
const STRING_BOUND = /^google\.protobuf\.(Timestamp|Duration|FieldMask|\w+Value)$/;

/**
 * Binds one query parameter into `values` the way Google's HTTP transcoding does: a dotted name
 * walks into sub-messages, a repeated field collects every occurrence. Returns why it cannot be
 * bound, or undefined once bound.
 */
function bind(type: Type, values: Record<string, unknown>, key: string, value: string): string | undefined {
  const segments = key.split('.');
  let current = type;
  let target = values;
  for (const [i, segment] of segments.entries()) {
    const field = current.fields[segment] ?? current.fieldsArray.find((f) => jsonNameOf(f) === segment);
    if (!field) return `Field '${key}' could not be found in request message.`;
    const name = jsonNameOf(field);
    const resolved = field.resolvedType;
    const message =
      resolved && !(resolved instanceof Enum) && !STRING_BOUND.test(resolved.fullName.replace(/^\./, ''))
        ? (resolved as Type)
        : undefined;
    if (i < segments.length - 1) {
      if (!message || field.repeated || field instanceof MapField)
        return `Field '${key}' could not be found in request message.`;
      const child = target[name];
      target = (target[name] = typeof child === 'object' && child !== null ? child : {}) as Record<
        string,
        unknown
      >;
      current = message;
      continue;
    }
    if (message || field instanceof MapField)
      return `'${key}' is a message type. Parameters can only be bound to primitive types.`;
    if (field.repeated) {
      const list = Array.isArray(target[name]) ? (target[name] as unknown[]) : [];
      list.push(value);
      target[name] = list;
    } else target[name] = value;
  }
  return undefined;
}

/**
 * Checks query parameters against a request message (those bound from the path excluded) and
 * returns them as the message's canonical proto3 JSON, nested and typed.
 */
export function checkQuery(
  url: URL,
  typeName: string | undefined,
  pathFields: string[] = [],
): Record<string, unknown> {
  const type = typeName ? lookupMessageType(typeName) : undefined;
  const values: Record<string, unknown> = {};
  const violations: { field: string; description: string }[] = [];
  for (const [key, value] of url.searchParams) {
    if (SYSTEM_PARAMETERS.has(key)) continue;
    const why =
      !type || pathFields.includes(key.split('.')[0]!)
        ? `Field '${key}' could not be found in request message.`
        : bind(type, values, key, value);
    if (why) {
      violations.push({
        field: '',
        description: `Invalid JSON payload received. Unknown name "${key}": Cannot bind query parameter. ${why}`,
      });
    }
  }
  if (violations.length) throw badRequest(violations);
  if (!typeName) return {};
  const result = checkProtoJson(typeName, values);
  if (!result.ok) throw badRequest(result.violations);
  return result.value;
}

/**
 * Parses and checks a JSON body against an official request message (a call with no query
 * parameters of its own): the body dispatch already read, or the request's.
 */
export async function readMessage(ctx: RequestContext, typeName: string): Promise<Record<string, unknown>> {
  checkQuery(ctx.url, undefined);
  const body = parseJsonBody(ctx.body ?? (await readBody(ctx.req, MANAGEMENT_BODY_LIMIT)));
  const result = checkProtoJson(typeName, body);
  if (!result.ok) throw badRequest(result.violations);
  return result.value;
}
