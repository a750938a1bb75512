import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import busboy from 'busboy';
import type { Request, RequestHandler } from 'express';
import { z } from 'zod';
import { API_PREFIX, type FileView } from '../../contract';
import { PayloadTooLargeError, ValidationError } from '../../core/errors';
import type { FileService } from '../../core/files/types';
import type { FileSizeBeforeBody, Quotas } from '../../core/quotas';
import { declaredLength } from '../body-headers';
import { attachmentDisposition } from '../content-disposition';
import { endpoint, IdParams, LOCATION_HEADER, respond, type Endpoint } from '../endpoints';
import { atOncePerOwner } from '../at-once';
import { UnsupportedMediaTypeError } from '../errors';
import { continueBody } from '../expect-continue';
import { callerId } from '../middleware/authenticate';
import { FileViewSchema } from '../schemas';

export interface FileRoutesOptions {
  files: FileService;
  uploadLimitBytes: number;
  /** Per user. */
  uploadLimit: RequestHandler;
  quotas: Quotas;
}

const FILE_FIELD = 'file';
/**
 * Uploads and downloads of one user this process serves at once, each kind. An upload holds
 * a partial object on disk (up to UPLOAD_LIMIT_BYTES, which the quota sees only once it is
 * registered) and a download an open object, each with a socket, for as long as the client
 * takes: without a bound, one user could hold them until the process ran out of file
 * descriptors, memory or disk.
 */
const TRANSFERS_AT_ONCE_PER_USER = 4;
/** How long a user turned away by that bound waits before trying again. */
const TRANSFER_RETRY_AFTER_SECONDS = 5;

/** Slack for multipart boundaries and part headers when comparing Content-Length with the file limit. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * X-File-Name is percent-encoded when not ASCII (the documented form); the file service cleans
 * the name. Node reads a header's bytes as Latin-1, while curl and most clients send what was
 * typed as UTF-8 bytes: a value whose bytes are valid UTF-8 is read as UTF-8 (`résumé.txt`,
 * not `rÃ©sumÃ©.txt`), as busboy reads a multipart file name.
 */
function headerFileName(raw: string | undefined): string {
  if (!raw) return '';
  let text = raw;
  // eslint-disable-next-line no-control-regex -- any character past ASCII means raw bytes, not percent-encoding.
  if (/[^\u0000-\u007f]/.test(raw)) {
    try {
      text = STRICT_UTF8.decode(Buffer.from(raw, 'latin1'));
    } catch {
      // Not UTF-8: the Latin-1 reading stands.
    }
  }
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * What the quota check before the body may take as the file's size. A raw upload's
 * Content-Length is its file's. A file sized only as it is read (a chunked body, a multipart
 * file part) may be empty, which an exactly full quota holds: such a body is read, and refused
 * at its file's first byte. Except a multipart body longer than the slack for its boundaries
 * and part headers: it carries at least a byte besides its envelope, and at a full quota is
 * refused before it is sent (or 100 Continue said).
 */
function fileSizeBeforeBody(multipart: boolean, length: number | undefined): FileSizeBeforeBody {
  if (length === undefined) return { atLeast: 0 };
  if (!multipart) return { exact: length };
  return { atLeast: length > MULTIPART_OVERHEAD_BYTES ? 1 : 0 };
}

/** Parts a multipart upload may hold; the `file` part must be among them. */
const MULTIPART_LIMITS = { files: 1, fields: 20, parts: 25 };

/**
 * The first `file` part of a multipart body goes to the store; other parts are drained and
 * ignored. A body found malformed after its file part was stored whole is refused, and
 * `discard` removes what was stored. The whole body, parts the store never sees included,
 * may be `maxBodyBytes` long: past that it is refused with 413 whatever it holds, so a
 * client cannot keep an upload's place and the parser busy for as long as it sends.
 */
function receiveMultipart(
  req: Request,
  maxBodyBytes: number,
  upload: (name: string, contentType: string, body: Readable) => Promise<FileView>,
  discard: (file: FileView) => Promise<void>,
): Promise<FileView> {
  return new Promise<FileView>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      // Browsers send a file name as raw UTF-8 in filename="…"; busboy would read it as Latin-1 (résumé → rÃ©sumÃ©).
      parser = busboy({ headers: req.headers, defParamCharset: 'utf8', limits: MULTIPART_LIMITS });
    } catch (error) {
      reject(new ValidationError(`malformed multipart request: ${(error as Error).message}`));
      return;
    }
    let stored: Promise<FileView> | undefined;
    let filePart: Readable | undefined;
    let partsLimitReached = false;
    let refused = false;
    /** Stops reading the body and refuses it, once the file part's store has settled (removing what it kept). */
    const refuse = (refusal: Error) => {
      if (refused) return;
      refused = true;
      req.unpipe(parser);
      req.off('data', count);
      // A part still streaming ends with the refusal, so its store fails and keeps nothing.
      filePart?.destroy(refusal);
      if (!stored) reject(refusal);
      else void stored.then(discard, () => undefined).finally(() => reject(refusal));
    };
    let received = 0;
    const count = (chunk: Buffer) => {
      received += chunk.length;
      if (received > maxBodyBytes) refuse(new PayloadTooLargeError(`multipart uploads are limited to ${maxBodyBytes} bytes in all`));
    };
    parser.on('file', (field, stream, info) => {
      // A body that ends inside a part errors the part's stream, maybe before anything reads
      // it; unheard, that error would end the process. The parser reports it too (400 below),
      // and the store, reading an errored stream, fails and keeps nothing.
      stream.on('error', () => undefined);
      // Once refused, a part the parser was already given is skipped: nothing would remove it.
      if (refused || field !== FILE_FIELD || stored) {
        stream.resume();
        return;
      }
      filePart = stream;
      stored = upload(info.filename ?? '', info.mimeType || 'application/octet-stream', stream);
      // Whatever the store makes of the part, the rest of the body must keep flowing.
      stored.catch(() => stream.resume());
    });
    // Parts past the limit are read and skipped; a file part among them is never seen.
    parser.on('partsLimit', () => (partsLimitReached = true));
    parser.on('error', (error: Error) => refuse(new ValidationError(`malformed multipart request: ${error.message}`)));
    parser.on('close', () => {
      if (refused) return;
      if (!stored) {
        const among = partsLimitReached ? ` among its first ${MULTIPART_LIMITS.parts} parts` : '';
        reject(new ValidationError(`the multipart body has no "file" part${among}`, [{ field: FILE_FIELD, message: `is required${among}` }]));
      } else stored.then(resolve, reject);
    });
    req.on('data', count);
    req.pipe(parser);
  });
}

const Binary = z.string().meta({ contentMediaType: 'application/octet-stream' });
/**
 * A raw upload is taken with whatever Content-Type it is sent with (text/csv, image/png, …),
 * stored with it, and a download is answered with that type: any media type, not only
 * application/octet-stream, so a generated client and a response validator accept both.
 */
const ANY_MEDIA_TYPE = '*/*';

export function fileEndpoints({ files, uploadLimitBytes, uploadLimit, quotas }: FileRoutesOptions): Endpoint[] {
  const admitUpload = atOncePerOwner(TRANSFERS_AT_ONCE_PER_USER, 'uploads', TRANSFER_RETRY_AFTER_SECONDS);
  const admitDownload = atOncePerOwner(TRANSFERS_AT_ONCE_PER_USER, 'downloads', TRANSFER_RETRY_AFTER_SECONDS);

  return [
    endpoint({
      method: 'post',
      path: `${API_PREFIX}/files`,
      operationId: 'uploadFile',
      summary: 'Upload a file',
      description: 'Multipart field "file", or the raw bytes with their Content-Type and an optional X-File-Name (percent-encoded when not ASCII; raw UTF-8 bytes are read as UTF-8 too).',
      tag: 'files',
      access: 'user',
      before: [uploadLimit],
      request: {
        headers: z.object({ 'x-file-name': z.string().max(1_024).optional().meta({ description: 'Name of a raw upload.' }) }),
        rawBody: {
          description: 'The file.',
          content: {
            'multipart/form-data': { schema: z.object({ file: Binary }) },
            [ANY_MEDIA_TYPE]: { schema: Binary },
          },
        },
      },
      responses: {
        201: respond.json('The stored file.', FileViewSchema, LOCATION_HEADER),
        400: respond.problem('Malformed multipart body or no "file" part.'),
        403: respond.problem('Over the caller\'s quota of files or stored bytes; nothing was stored.'),
        413: respond.problem('Over the upload limit; nothing was stored.'),
        415: respond.problem('No Content-Type, or a Content-Encoding (uploads are stored as sent).'),
        429: respond.tooManyRequests(`Over the per-user upload rate, or the caller has ${TRANSFERS_AT_ONCE_PER_USER} uploads under way (in this server process); see Retry-After.`),
      },
      async handle({ headers }, req, res) {
        const ownerId = callerId(req);
        const contentType = req.headers['content-type'];
        if (!contentType) throw new UnsupportedMediaTypeError('an upload needs a Content-Type: multipart/form-data or the file\'s own type');
        // The bytes are stored and served back as sent: gzip bytes kept as a text/plain file would be a different file.
        const encoding = req.headers['content-encoding']?.trim().toLowerCase();
        if (encoding && encoding !== 'identity') throw new UnsupportedMediaTypeError(`uploads are stored as sent; send the file without a Content-Encoding (not ${encoding})`);
        const multipart = req.is('multipart/form-data') === 'multipart/form-data';
        const length = declaredLength(req);
        if (length !== undefined && length > uploadLimitBytes + (multipart ? MULTIPART_OVERHEAD_BYTES : 0)) {
          throw new PayloadTooLargeError(`uploads are limited to ${uploadLimitBytes} bytes`);
        }
        admitUpload(ownerId, res);
        // Before 100 Continue: a file the quota cannot hold is refused before its bytes are sent.
        const quotaBytes = await quotas.uploadAllowance(ownerId, fileSizeBeforeBody(multipart, length));
        continueBody(req, res);
        const discard = (stored: FileView) =>
          files.remove(ownerId, stored.id, req.log).catch((error: unknown) => req.log.warn({ err: error, fileId: stored.id }, 'could not remove the file of a refused multipart upload'));
        const upload = (name: string, type: string, body: Readable) => files.upload({ ownerId, name, contentType: type, body, maxBytes: uploadLimitBytes, quotaBytes, quota: quotas.storage });
        // A refusal (past the limit or the quota, malformed) goes to the problem handler, which
        // settles the rest of the body (settleUnreadBody).
        const file = multipart
          ? await receiveMultipart(req, uploadLimitBytes + MULTIPART_OVERHEAD_BYTES, upload, discard)
          : await upload(headerFileName(headers['x-file-name']), contentType, req);
        res.status(201).location(`${API_PREFIX}/files/${file.id}`).json(file);
      },
    }),
    endpoint({
      method: 'get',
      path: `${API_PREFIX}/files/:id`,
      operationId: 'getFile',
      summary: 'File metadata',
      tag: 'files',
      access: 'user',
      request: { params: IdParams },
      responses: { 200: respond.json('The file.', FileViewSchema), 404: respond.problem('No such file of the caller.') },
      async handle({ params }, req, res) {
        res.json(await files.get(callerId(req), params.id));
      },
    }),
    endpoint({
      method: 'get',
      path: `${API_PREFIX}/files/:id/content`,
      operationId: 'downloadFile',
      summary: 'File bytes',
      tag: 'files',
      access: 'user',
      request: { params: IdParams },
      responses: {
        200: {
          description: 'The bytes, with their Content-Type and Content-Length.',
          headers: {
            'Content-Disposition': {
              description: '`attachment`, with the file\'s name: `filename*` (RFC 8187, UTF-8) and an ASCII `filename` for clients that read only that.',
              schema: { type: 'string' },
            },
          },
          content: { [ANY_MEDIA_TYPE]: { schema: Binary } },
        },
        404: respond.problem('No such file of the caller.'),
        429: respond.tooManyRequests(`The caller has ${TRANSFERS_AT_ONCE_PER_USER} downloads under way (in this server process); see Retry-After.`),
      },
      async handle({ params }, req, res) {
        admitDownload(callerId(req), res);
        const aborted = new AbortController();
        res.once('close', () => aborted.abort());
        const { file, body } = await files.openContent(callerId(req), params.id, aborted.signal);
        res.writeHead(200, {
          'Content-Type': file.contentType,
          'Content-Length': String(file.size),
          'Content-Disposition': attachmentDisposition(file.name),
          'Cache-Control': 'private, max-age=0',
        });
        await pipeline(body, res).catch((error: unknown) => {
          // Headers are out; a broken stream can only be cut short, which the client sees as a short body.
          if (!aborted.signal.aborted) res.destroy(error as Error);
        });
      },
    }),
    endpoint({
      method: 'delete',
      path: `${API_PREFIX}/files/:id`,
      operationId: 'deleteFile',
      summary: 'Delete a file',
      description: 'A job whose result the file was keeps its result without the file (resultFileId becomes null).',
      tag: 'files',
      access: 'user',
      request: { params: IdParams },
      responses: { 204: respond.empty('Deleted.'), 404: respond.problem('No such file of the caller.') },
      async handle({ params }, req, res) {
        await files.remove(callerId(req), params.id, req.log);
        res.status(204).end();
      },
    }),
  ];
}
