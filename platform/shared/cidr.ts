/**
 * IPv4 CIDR arithmetic the config schema needs to refuse undeployable combinations
 * (a private endpoint whose deployer network is not routed to the VPC, a public
 * allow-list entry that no public source address can ever match). Pure functions.
 */

export interface Ipv4Block {
  /** First address as an unsigned 32-bit integer. */
  start: number;
  /** Prefix length, 0–32. */
  prefix: number;
}

/** `10.1.0.0/16` → its first address and prefix; throws on anything else. */
export function parseCidr(cidr: string): Ipv4Block {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m) throw new Error(`${cidr} is not an IPv4 CIDR block`);
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix > 32) throw new Error(`${cidr} is not an IPv4 CIDR block`);
  const address = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  return { start: address - (address % size), prefix };
}

function end(b: Ipv4Block): number {
  return b.start + 2 ** (32 - b.prefix) - 1;
}

/** Whether every address of `inner` lies in `outer`. */
export function cidrContains(outer: string, inner: string): boolean {
  const o = parseCidr(outer);
  const i = parseCidr(inner);
  return i.start >= o.start && end(i) <= end(o);
}

/** Whether the two blocks share at least one address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  return x.start <= end(y) && y.start <= end(x);
}

/**
 * Ranges that never appear as the source address of a request to a public AWS endpoint:
 * RFC 1918 private space, carrier-grade NAT, loopback and link-local.
 */
export const NON_PUBLIC_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16'] as const;

/** Whether any address of the block is non-public (see `NON_PUBLIC_RANGES`). */
export function isNonPublic(cidr: string): boolean {
  return NON_PUBLIC_RANGES.some((range) => cidrsOverlap(range, cidr));
}
