import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Decoded path: `/bucket/key` in path style. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface FakeS3Server {
  /** `http://127.0.0.1:PORT`, for the client's `endpoint` (path style). */
  endpoint: string;
  requests: RecordedRequest[];
  /** Stored objects by path (`/bucket/key`). */
  objects: Map<string, { body: Buffer; contentType?: string }>;
  /** Multipart uploads begun and neither completed nor aborted, by upload id. */
  openUploads: Map<string, { path: string; parts: Map<number, Buffer> }>;
  buckets: Set<string>;
  /** Answers a request with this S3 error instead of serving it (a store that is failing or throttling); unset serves everything. */
  fault?: (request: RecordedRequest) => { status: number; code: string } | undefined;
  close(): Promise<void>;
}

function etagOf(data: Buffer): string {
  return `"${createHash('md5').update(data).digest('hex')}"`;
}

function sendXml(response: ServerResponse, status: number, xml: string): void {
  response.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
  response.end(xml);
}

function sendError(response: ServerResponse, status: number, code: string, method: string): void {
  // HEAD responses carry no body; the SDK then names the error after the status (NotFound).
  if (method === 'HEAD') {
    response.writeHead(status).end();
    return;
  }
  sendXml(response, status, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message><RequestId>fake</RequestId></Error>`);
}

/**
 * Just enough of S3's REST API, path style, on 127.0.0.1:0, to check what the real SDK
 * sends: PutObject, multipart upload (create, part, complete, abort), GetObject,
 * HeadObject, DeleteObject, HeadBucket and ListObjectsV2 (keys under a prefix). Every
 * request is recorded.
 */
export async function startFakeS3(buckets: string[]): Promise<FakeS3Server> {
  const requests: RecordedRequest[] = [];
  const objects: FakeS3Server['objects'] = new Map();
  const openUploads: FakeS3Server['openUploads'] = new Map();
  const bucketSet = new Set(buckets);

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://fake');
      const path = decodeURIComponent(url.pathname);
      const method = request.method ?? 'GET';
      const body = Buffer.concat(chunks);
      const recorded = { method, path, query: url.searchParams, headers: request.headers, body };
      requests.push(recorded);
      const fault = handle.fault?.(recorded);
      if (fault) return sendError(response, fault.status, fault.code, method);

      const bucket = path.split('/')[1] ?? '';
      if (!bucketSet.has(bucket)) return sendError(response, 404, 'NoSuchBucket', method);
      const isBucket = path === `/${bucket}` || path === `/${bucket}/`;
      const uploadId = url.searchParams.get('uploadId');

      if (isBucket && method === 'HEAD') {
        response.writeHead(200).end();
      } else if (isBucket && method === 'GET' && url.searchParams.get('list-type') === '2') {
        const prefix = url.searchParams.get('prefix') ?? '';
        const maxKeys = Number(url.searchParams.get('max-keys') ?? 1_000);
        const keys = [...objects.keys()].map((objectPath) => objectPath.slice(`/${bucket}/`.length)).filter((key) => key.startsWith(prefix)).sort().slice(0, maxKeys);
        const contents = keys.map((key) => `<Contents><Key>${key}</Key></Contents>`).join('');
        sendXml(response, 200, `<ListBucketResult><Name>${bucket}</Name><Prefix>${prefix}</Prefix><KeyCount>${keys.length}</KeyCount><MaxKeys>${maxKeys}</MaxKeys><IsTruncated>false</IsTruncated>${contents}</ListBucketResult>`);
      } else if (method === 'POST' && url.searchParams.has('uploads')) {
        const id = randomUUID();
        openUploads.set(id, { path, parts: new Map() });
        sendXml(response, 200, `<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${path}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`);
      } else if (uploadId !== null) {
        const upload = openUploads.get(uploadId);
        if (!upload) return sendError(response, 404, 'NoSuchUpload', method);
        if (method === 'PUT') {
          upload.parts.set(Number(url.searchParams.get('partNumber')), body);
          response.writeHead(200, { etag: etagOf(body) }).end();
        } else if (method === 'POST') {
          const ordered = [...upload.parts].sort(([a], [b]) => a - b).map(([, part]) => part);
          const all = Buffer.concat(ordered);
          objects.set(upload.path, { body: all });
          openUploads.delete(uploadId);
          sendXml(response, 200, `<CompleteMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${path}</Key><ETag>${etagOf(all)}</ETag></CompleteMultipartUploadResult>`);
        } else if (method === 'DELETE') {
          openUploads.delete(uploadId);
          response.writeHead(204).end();
        } else {
          sendError(response, 405, 'MethodNotAllowed', method);
        }
      } else if (method === 'PUT') {
        objects.set(path, { body, contentType: request.headers['content-type'] });
        response.writeHead(200, { etag: etagOf(body) }).end();
      } else if (method === 'GET' || method === 'HEAD') {
        const object = objects.get(path);
        if (!object) return sendError(response, 404, 'NoSuchKey', method);
        response.writeHead(200, {
          'content-length': object.body.length,
          'content-type': object.contentType ?? 'application/octet-stream',
          etag: etagOf(object.body),
        });
        response.end(method === 'GET' ? object.body : undefined);
      } else if (method === 'DELETE') {
        objects.delete(path);
        response.writeHead(204).end();
      } else {
        sendError(response, 405, 'MethodNotAllowed', method);
      }
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const handle: FakeS3Server = {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    objects,
    openUploads,
    buckets: bucketSet,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
  return handle;
}
