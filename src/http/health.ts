import type { FastifyInstance } from 'fastify';

/**
 * What `/healthz` answers: ok, or why the server no longer does its work (say, the storage-event
 * subscription it pulls was deleted). Shared by the route modules of one server: one marks it
 * failing, the system route reports it.
 */
export interface Health {
  /** Why the server is unhealthy; undefined while it is healthy. */
  readonly failing: string | undefined;
  /** Marks the server unhealthy for good (the first reason is kept). */
  fail(reason: string): void;
  /** Resolves with the reason once the server is marked unhealthy (`serve` then stops, exit 1). */
  readonly failed: Promise<string>;
}

declare module 'fastify' {
  interface FastifyInstance {
    health: Health;
  }
}

/** The server's health, made on first use. */
export function healthOf(app: FastifyInstance): Health {
  if (!app.hasDecorator('health')) {
    let failing: string | undefined;
    let settle: (reason: string) => void = () => undefined;
    const failed = new Promise<string>((resolve) => (settle = resolve));
    app.decorate('health', {
      get failing() {
        return failing;
      },
      fail(reason: string) {
        failing ??= reason;
        settle(failing);
      },
      failed,
    });
  }
  return app.health;
}
