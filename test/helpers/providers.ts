import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';

/**
 * Real local servers that play a provider in channel tests: an HTTP server whose answers a test
 * scripts (webhook receivers, an SMS provider API, a web push service) and an SMTP server that
 * keeps every message it receives. Nothing is mocked: the adapters speak their real protocol.
 */

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export type Answer = (res: ServerResponse, req: SeenRequest) => void;

/** An HTTP server on 127.0.0.1 that records requests and answers from a script (default 200 "ok"). */
export class FakeHttpProvider {
  readonly seen: SeenRequest[] = [];
  answers: Answer[] = [];
  /** Used when the script is empty. */
  fallback: Answer = (res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  url = '';
  private readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      this.seen.push(seen);
      (this.answers.shift() ?? this.fallback)(res, seen);
    });
  });

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  reset(): void {
    this.seen.length = 0;
    this.answers = [];
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

export interface ReceivedMail {
  from: string;
  to: string[];
  /** The raw RFC 5322 message. */
  raw: string;
  /** Header fields, unfolded, lower-cased names (first occurrence). */
  headers: Record<string, string>;
}

/**
 * An SMTP server on 127.0.0.1 (no TLS, auth optional) that keeps what it receives. `rejectRcpt`
 * makes it refuse recipients with a given SMTP code (550 final, 451 transient).
 */
export class FakeSmtpServer {
  readonly received: ReceivedMail[] = [];
  rejectRcpt: { code: number; message: string } | undefined;
  port = 0;
  private readonly server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth: (auth, _session, cb) => cb(null, { user: auth.username }),
    onRcptTo: (_addr, _session: SMTPServerSession, cb) => {
      const r = this.rejectRcpt;
      if (r) return cb(Object.assign(new Error(r.message), { responseCode: r.code }));
      cb();
    },
    onData: (stream, session, cb) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        this.received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          headers: parseHeaders(raw),
        });
        cb();
      });
    },
  });

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function parseHeaders(raw: string): Record<string, string> {
  const end = raw.indexOf('\r\n\r\n');
  const head = (end >= 0 ? raw.slice(0, end) : raw).replace(/\r\n[ \t]+/g, ' ');
  const out: Record<string, string> = {};
  for (const line of head.split('\r\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).toLowerCase();
    if (!(name in out)) out[name] = line.slice(i + 1).trim();
  }
  return out;
}

/** Decodes the quoted-printable parts of a raw message enough to search its text. */
export function decodeQuotedPrintable(s: string): string {
  return s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** The MIME part of a raw message with the given content type, decoded (quoted-printable or base64). */
export function mimePart(raw: string, contentType: string): string | undefined {
  const re = new RegExp(`Content-Type: ${contentType.replace('/', '\\/')}[^\\r\\n]*\\r\\n((?:[^\\r\\n]+\\r\\n)*)\\r\\n([\\s\\S]*?)(?:\\r\\n--|$)`, 'i');
  const m = re.exec(raw);
  if (!m) return undefined;
  const headers = m[1] ?? '';
  const body = m[2] ?? '';
  if (/Content-Transfer-Encoding: base64/i.test(headers)) return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (/Content-Transfer-Encoding: quoted-printable/i.test(headers)) return Buffer.from(decodeQuotedPrintable(body), 'latin1').toString('utf8');
  return body;
}
