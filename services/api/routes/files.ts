import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import busboy from 'busboy';
import { Router, type Request, type RequestHandler } from 'express';
import { API_PREFIX, type FileView } from '../../contract';
import { PayloadTooLargeError, ValidationError } from '../../core/errors';
import type { FileService } from '../../core/files/types';
import { UnsupportedMediaTypeError } from '../errors';
import { callerId } from '../middleware/authenticate';
import { requireUuid } from '../validation';

export interface FileRoutesOptions {
  files: FileService;
  uploadLimitBytes: number;
  authenticated: RequestHandler;
}

const FILE_FIELD = 'file';
const DEFAULT_NAME = 'upload';
/** Slack for multipart boundaries and part headers when comparing Content-Length with the file limit. */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

/** Keeps a client-supplied file name printable and short; never used as a path. */
function cleanName(raw: string | undefined): string {
  if (!raw) return DEFAULT_NAME;
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    // Not percent-encoded: keep it as sent.
  }
  // eslint-disable-next-line no-control-regex
  const cleaned = basename(decoded.replace(/\\/g, '/')).replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 255);
  return cleaned || DEFAULT_NAME;
}

function declaredLength(req: Request): number | undefined {
  const header = req.headers['content-length'];
  return header === undefined ? undefined : Number(header);
}

/** The first `file` part of a multipart body goes to the store; other parts are drained and ignored. */
function receiveMultipart(req: Request, upload: (name: string, contentType: string, body: Readable) => Promise<FileView>): Promise<FileView> {
  return new Promise<FileView>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, limits: { files: 1, fields: 20, parts: 25 } });
    } catch (error) {
      reject(new ValidationError(`malformed multipart request: ${(error as Error).message}`));
      return;
    }
    let stored: Promise<FileView> | undefined;
    parser.on('file', (field, stream, info) => {
      if (field !== FILE_FIELD || stored) {
        stream.resume();
        return;
      }
      stored = upload(cleanName(info.filename), info.mimeType || 'application/octet-stream', stream);
      // Whatever the store makes of the part, the rest of the body must keep flowing.
      stored.catch(() => stream.resume());
    });
    parser.on('error', (error: Error) => reject(new ValidationError(`malformed multipart request: ${error.message}`)));
    parser.on('close', () => {
      if (!stored) reject(new ValidationError('the multipart body has no "file" part', [{ field: FILE_FIELD, message: 'is required' }]));
      else stored.then(resolve, reject);
    });
    req.pipe(parser);
  });
}

export function fileRoutes({ files, uploadLimitBytes, authenticated }: FileRoutesOptions): Router {
  const router = Router();
  router.use(`${API_PREFIX}/files`, authenticated);

  router.post(`${API_PREFIX}/files`, async (req, res) => {
    const ownerId = callerId(req);
    const contentType = req.headers['content-type'];
    if (!contentType) throw new UnsupportedMediaTypeError('an upload needs a Content-Type: multipart/form-data or the file\'s own type');
    const multipart = req.is('multipart/form-data') === 'multipart/form-data';
    const length = declaredLength(req);
    if (length !== undefined && length > uploadLimitBytes + (multipart ? MULTIPART_OVERHEAD_BYTES : 0)) {
      // Refuse before reading; closing the connection spares both sides the rest of the body.
      res.setHeader('Connection', 'close');
      throw new PayloadTooLargeError(`uploads are limited to ${uploadLimitBytes} bytes`);
    }
    const upload = (name: string, type: string, body: Readable) => files.upload({ ownerId, name, contentType: type, body, maxBytes: uploadLimitBytes });
    let file: FileView;
    try {
      file = multipart
        ? await receiveMultipart(req, upload)
        : await upload(cleanName(req.header('x-file-name')), contentType, req);
    } catch (error) {
      if (error instanceof PayloadTooLargeError) res.setHeader('Connection', 'close');
      throw error;
    }
    res.status(201).location(`${API_PREFIX}/files/${file.id}`).json(file);
  });

  router.get(`${API_PREFIX}/files/:id`, async (req, res) => {
    res.json(await files.get(callerId(req), requireUuid(req.params.id, 'file')));
  });

  router.get(`${API_PREFIX}/files/:id/content`, async (req, res) => {
    const aborted = new AbortController();
    res.once('close', () => aborted.abort());
    const { file, body } = await files.openContent(callerId(req), requireUuid(req.params.id, 'file'), aborted.signal);
    res.writeHead(200, {
      'Content-Type': file.contentType,
      'Content-Length': String(file.size),
      'Content-Disposition': `attachment; filename*=UTF-8''${encodeURIComponent(file.name)}`,
      'Cache-Control': 'private, max-age=0',
    });
    await pipeline(body, res).catch((error: unknown) => {
      // Headers are out; a broken stream can only be cut short, which the client sees as a short body.
      if (!aborted.signal.aborted) res.destroy(error as Error);
    });
  });

  return router;
}
