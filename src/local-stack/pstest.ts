import { open, stat } from 'node:fs/promises';
import net from 'node:net';
import { type ManagedProcess, startService } from './process';

/**
 * Google's Pub/Sub fake (`pstest`, built from tools/pstest by install-tools.sh): plain gRPC on
 * loopback, everything in memory. Clients reach it with `PUBSUB_EMULATOR_HOST=<address>`. Port 0
 * (the default) lets it bind a free port itself and the address is read from the line it prints
 * ("pstest listening on HOST:PORT"): no port picked here that something else could take first.
 */

export interface PstestOptions {
  binary: string;
  /** Default 0: a free port, chosen by pstest's own bind. */
  port?: number;
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
  const port = options.port ?? 0;
  // The log file is appended to: its line from this start comes after what it holds now.
  const logStart = await stat(options.logFile).then(
    (s) => s.size,
    () => 0,
  );
  let address: string | undefined;
  const child = await startService({
    name: 'pstest',
    command: options.binary,
    args: ['-host', host, '-port', String(port)],
    logFile: options.logFile,
    what: 'pstest',
    healthy: async () => {
      address ??= await listeningAddress(options.logFile, logStart);
      return address !== undefined && (await accepts(address));
    },
    timeoutMs: options.startTimeoutMs ?? 15_000,
  });
  return { address: address!, process: child, stop: () => child.stop() };
}

/** The `HOST:PORT` of the "pstest listening on" line written to `logFile` after `from`. */
async function listeningAddress(logFile: string, from: number): Promise<string | undefined> {
  const file = await open(logFile, 'r');
  try {
    const { size } = await file.stat();
    const buffer = Buffer.alloc(Math.max(0, size - from));
    await file.read(buffer, 0, buffer.length, from);
    return /^pstest listening on (\S+:\d+)$/m.exec(buffer.toString('utf8'))?.[1];
  } finally {
    await file.close();
  }
}

/** Whether something accepts TCP connections there (gRPC needs no request to tell). */
function accepts(address: string): Promise<boolean> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(address.slice(colon + 1));
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
