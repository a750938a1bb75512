import type { IncomingMessage } from 'node:http';

/** The body's length as its Content-Length declares it; undefined without one. */
export function declaredLength(req: IncomingMessage): number | undefined {
  const header = req.headers['content-length'];
  return header === undefined ? undefined : Number(header);
}

/** Whether the body is sent compressed (a Content-Encoding other than identity): its size is known only once decoded. */
export function isEncoded(req: IncomingMessage): boolean {
  const encoding = req.headers['content-encoding']?.trim().toLowerCase();
  return encoding !== undefined && encoding !== 'identity';
}
