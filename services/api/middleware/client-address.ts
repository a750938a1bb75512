import type { Request } from 'express';
import ipaddr from 'ipaddr.js';

/**
 * The key a per-address limit counts under. An IPv6 client usually holds a whole /64
 * (one address per device, privacy addresses rotating), so IPv6 counts by /64; IPv4 and
 * IPv4-mapped IPv6 by the address. `req.ip` honours `trust proxy` (TRUST_PROXY).
 */
export function clientAddressKey(req: Pick<Request, 'ip' | 'socket'>): string {
  const raw = req.ip ?? req.socket.remoteAddress ?? '';
  if (!ipaddr.isValid(raw)) return `unknown:${raw.slice(0, 64)}`;
  const address = ipaddr.process(raw);
  if (address.kind() === 'ipv4') return address.toString();
  const parts = (address as ipaddr.IPv6).parts.slice(0, 4);
  return `${parts.map((part) => part.toString(16)).join(':')}::/64`;
}
