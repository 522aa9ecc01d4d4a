import net from 'node:net';
import { type ManagedProcess, spawnService, waitUntilHealthy } from './process';

/**
 * Google's Pub/Sub fake (`pstest`, built from tools/pstest by install-tools.sh): plain gRPC on
 * loopback, everything in memory. Clients reach it with `PUBSUB_EMULATOR_HOST=<address>`.
 */

export interface PstestOptions {
  binary: string;
  port: number;
  host?: string;
  logFile: string;
  startTimeoutMs?: number;
}

export interface PstestServer {
  /** `host:port`, the value of PUBSUB_EMULATOR_HOST. */
  readonly address: string;
  readonly process: ManagedProcess;
  stop(): Promise<void>;
}

export async function startPstest(options: PstestOptions): Promise<PstestServer> {
  const host = options.host ?? '127.0.0.1';
  const child = spawnService({
    name: 'pstest',
    command: options.binary,
    args: ['-host', host, '-port', String(options.port)],
    logFile: options.logFile,
  });
  try {
    await waitUntilHealthy('pstest', () => accepts(host, options.port), {
      timeoutMs: options.startTimeoutMs ?? 15_000,
      process: child,
    });
  } catch (err) {
    await child.stop(1_000);
    throw err;
  }
  return { address: `${host}:${options.port}`, process: child, stop: () => child.stop() };
}

/** Whether something accepts TCP connections there (gRPC needs no request to tell). */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
