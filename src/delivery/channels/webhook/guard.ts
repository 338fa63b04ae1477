import { BlockList, isIP } from 'node:net';
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';

/**
 * The outbound address policy (SSRF guard). Every request Cairn makes to an address a blueprint
 * author, an API caller or a browser supplied (webhook targets, SMS provider base URLs, web push
 * endpoints) goes through it:
 *
 * - only `http:` and `https:` URLs (push endpoints: `https:` only unless private addresses are allowed);
 * - the host is resolved (every address, `dns.lookup(all)`) and the request is refused when any
 *   address is loopback, private, link-local, CGNAT, unique-local, multicast, reserved or
 *   documentation space, including IPv4 addresses embedded in IPv6 (mapped `::ffff:a.b.c.d`,
 *   IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`), the NAT64 local-use
 *   prefix `64:ff9b:1::/48` and the IETF protocol block `2001::/23` (Teredo `2001::/32` tunnels
 *   to an address hidden in its bits; nothing in the block hosts a webhook);
 * - the check runs inside the socket's own `lookup`, so the address that was checked is the
 *   address that is connected to (no window for DNS rebinding between check and connect);
 * - redirects are never followed (the HTTP client returns a 3xx as a final answer).
 *
 * `allowPrivate` (CAIRN_OUTBOUND_ALLOW_PRIVATE) lifts the address rule for development and tests;
 * schemes are still checked.
 */
export interface OutboundPolicy {
  readonly allowPrivate: boolean;
}

export const DEFAULT_OUTBOUND_POLICY: OutboundPolicy = Object.freeze({ allowPrivate: false });

/** A request refused by the outbound policy; never retryable (the address will not change by waiting). */
export class OutboundRefusedError extends Error {
  readonly code = 'ADDRESS_REFUSED';
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`outbound request to ${url} refused: ${reason}`);
    this.name = 'OutboundRefusedError';
  }
}

const BLOCKED = new BlockList();
// IPv4: "this" network, private, CGNAT, loopback, link-local, IETF protocol assignments,
// documentation (TEST-NET-1/2/3), benchmarking, multicast, reserved, broadcast.
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  BLOCKED.addSubnet(net, bits, 'ipv4');
}
// IPv6: unspecified, loopback, NAT64 local-use (RFC 8215), discard-only, IETF protocol assignments
// (Teredo, ORCHID, benchmarking …), documentation, unique-local, link-local, site-local
// (deprecated), multicast.
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  BLOCKED.addSubnet(net, bits, 'ipv6');
}

/** The 8 hextets of an IPv6 address (accepts `::` compression and a dotted IPv4 tail). */
function hextets(ip: string): number[] | undefined {
  let text = ip.toLowerCase();
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const p = (dotted[1] as string).split('.').map(Number);
    text = `${text.slice(0, dotted.index)}${(((p[0] as number) << 8) | (p[1] as number)).toString(16)}:${(((p[2] as number) << 8) | (p[3] as number)).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const a = head === '' ? [] : head.split(':');
  const b = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? 0 : 8 - a.length - b.length;
  const all = [...a, ...Array<string>(Math.max(0, fill)).fill('0'), ...b].map((h) => parseInt(h, 16));
  return all.length === 8 && all.every((n) => Number.isInteger(n) && n >= 0 && n <= 0xffff) ? all : undefined;
}

function v4(hi: number, lo: number): string {
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

/** The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if any. */
export function embeddedIPv4(ip: string): string | undefined {
  const h = hextets(ip);
  if (!h) return undefined;
  const [a, b, c, d, e, f, g, k] = h as [number, number, number, number, number, number, number, number];
  if (a === 0 && b === 0 && c === 0 && d === 0 && e === 0 && (f === 0xffff || (f === 0 && (g !== 0 || k > 1)))) return v4(g, k);
  if (a === 0x64 && b === 0xff9b && c === 0 && d === 0 && e === 0 && f === 0) return v4(g, k);
  if (a === 0x2002) return v4(b, c);
  return undefined;
}

/**
 * Whether an IP address is one the guard refuses: not publicly routable, or an IPv6 form of one.
 *
 * @example isBlockedAddress('10.1.2.3') // true; isBlockedAddress('::ffff:127.0.0.1') // true; isBlockedAddress('93.184.216.34') // false
 */
export function isBlockedAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return BLOCKED.check(ip, 'ipv4');
  if (family === 6) {
    const inner = embeddedIPv4(ip);
    if (inner !== undefined && BLOCKED.check(inner, 'ipv4')) return true;
    return BLOCKED.check(ip.replace(/%.*$/, ''), 'ipv6');
  }
  return true; // not an IP address at all: refuse rather than guess
}

/**
 * Checks a URL's scheme and, when the host is an IP literal, its address. Hosts given by name are
 * checked when they are resolved (see guardedLookup). Returns the parsed URL.
 */
export function checkUrl(raw: string, policy: OutboundPolicy, opts: { httpsOnly?: boolean } = {}): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new OutboundRefusedError(raw, 'not an absolute URL');
  }
  const httpsOnly = opts.httpsOnly === true && !policy.allowPrivate;
  if (url.protocol !== 'https:' && (httpsOnly || url.protocol !== 'http:')) {
    throw new OutboundRefusedError(raw, `scheme ${url.protocol} is not allowed (${httpsOnly ? 'https' : 'http or https'} only)`);
  }
  if (url.username !== '' || url.password !== '') throw new OutboundRefusedError(raw, 'credentials in the URL are not allowed');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!policy.allowPrivate) {
    if (isIP(host) !== 0 && isBlockedAddress(host)) throw new OutboundRefusedError(raw, `${host} is a private, loopback or reserved address`);
    if (host === 'localhost' || host.endsWith('.localhost')) throw new OutboundRefusedError(raw, `${host} is a loopback name`);
  }
  return url;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for `http.request`: resolves every address of the host and refuses the connection
 * when any of them is blocked (a name that resolves to a public and a private address is refused:
 * which one a client picks is not ours to predict).
 */
export function guardedLookup(policy: OutboundPolicy, url: string): (hostname: string, options: LookupOptions, callback: LookupCallback) => void {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { all: true, family: options.family ?? 0, hints: options.hints }, (err, addresses) => {
      if (err) return callback(err, []);
      const list = addresses;
      if (list.length === 0) return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
      if (!policy.allowPrivate) {
        const bad = list.find((a) => isBlockedAddress(a.address));
        if (bad) return callback(new OutboundRefusedError(url, `${hostname} resolves to ${bad.address}, a private, loopback or reserved address`) as unknown as NodeJS.ErrnoException, []);
      }
      if (options.all) return callback(null, list);
      const first = list[0] as LookupAddress;
      callback(null, first.address, first.family);
    });
  };
}
