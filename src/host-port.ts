import { z } from 'zod';

/**
 * `host:port` to listen on (single source: `serve --listen`, `--metrics-address`, the worker's
 * `GARDEN_DEPLOY_METRICS_ADDRESS`): a name or IPv4 address, or a bracketed IPv6 address, and a port
 * of at most 65535 (0 for a free one).
 */
export const HOST_PORT = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/;

/**
 * The schema of a `host:port` value; messages start with `name` when given (`--listen must be …`),
 * `example` shows the usual value.
 */
export function hostPortSchema(example: string, name?: string) {
  return z
    .string()
    .regex(
      HOST_PORT,
      `${name ? `${name} ` : ''}must be host:port, e.g. ${example} (an IPv6 address in brackets)`,
    )
    .refine(
      // Only a host:port's port: a value that is none is told so once, above.
      (value) => !HOST_PORT.test(value) || splitHostPort(value).port <= 65_535,
      `${name ? `${name}: ` : ''}the port must be at most 65535`,
    );
}

/** `host:port` (checked by {@link hostPortSchema}) as its host, without IPv6 brackets, and port. */
export function splitHostPort(value: string): { host: string; port: number } {
  const colon = value.lastIndexOf(':');
  return { host: value.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(value.slice(colon + 1)) };
}
