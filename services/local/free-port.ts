import { readFileSync } from 'node:fs';
import net from 'node:net';

/** Ports other software on a developer machine is likely to hold (PostgreSQL, Redis, common app ports). */
const WELL_KNOWN_PORTS = new Set([3000, 5432, 6379, 8000, 8080, 8443, 9090, 9091]);

/** Ports this process already handed out, so two servers started back to back never get the same one. */
const handedOut = new Set<number>();

/** Ports the user set for listeners of their own (PORT, WORKER_METRICS_PORT): no other listener of the run may take them. */
const reserved = new Set<number>();

/** Keeps `port` for the listener the user set it for: findFreePort never picks it, and isPortUsable refuses it. */
export function reservePort(port: number): void {
  reserved.add(port);
}

/** True when `port` is free on `host` and not reserved for another listener of the run. */
export async function isPortUsable(port: number, host = '127.0.0.1'): Promise<boolean> {
  return !reserved.has(port) && (await isPortFree(port, host));
}

/**
 * The low end of the kernel's ephemeral range. Outgoing connections take their local port
 * from that range, so a server that stops and restarts on the same port (a fault test,
 * a supervised restart) could find it taken by a client socket if we picked it there.
 */
function ephemeralRangeStart(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    const parsed = Number(low);
    return Number.isInteger(parsed) && parsed > 12_000 ? parsed : 32_768;
  } catch {
    return 32_768;
  }
}

const RANGE_START = 10_000;
const rangeEnd = ephemeralRangeStart();

/** True when nothing listens on `port` at `host` (we could bind it ourselves). */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A port that is free now, below the ephemeral range and never a well-known or reserved one.
 * Another process may still take it before the caller binds it: callers that start a
 * server retry with a new port when the bind fails.
 */
export async function findFreePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const candidate = RANGE_START + Math.floor(Math.random() * (rangeEnd - RANGE_START));
    if (WELL_KNOWN_PORTS.has(candidate) || handedOut.has(candidate) || reserved.has(candidate)) continue;
    if (await isPortFree(candidate, host)) {
      handedOut.add(candidate);
      return candidate;
    }
  }
  throw new Error(`no free TCP port found on ${host} between ${RANGE_START} and ${rangeEnd}`);
}
