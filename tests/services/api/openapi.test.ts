import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CONSOLE_ROUTES, IN_CLUSTER_PATHS, isPublicPath, MAX_JSON_DEPTH, PATHS, PUBLIC_ROUTES, publicJobTypes, schemaName } from '../../../services/contract';
import { call, startApi, type ApiFixture } from './fixture';

interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, { operationId?: string; security?: unknown[]; responses: Record<string, { content?: Record<string, unknown> }> }>>;
  components: { securitySchemes: Record<string, unknown>; schemas: Record<string, Record<string, unknown>> };
}

/** Every `$ref` in the document, so the test can check each points at something that exists. */
function collectRefs(node: unknown, refs: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((item) => collectRefs(item, refs));
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') refs.push(value);
      else collectRefs(value, refs);
    }
  }
  return refs;
}

describe('OpenAPI document and docs', () => {
  let api: ApiFixture;
  let document: OpenApiDocument;

  beforeAll(async () => {
    api = await startApi();
    const response = await call<OpenApiDocument>(api, '/openapi.json');
    expect(response.status).toBe(200);
    document = response.body;
  });

  afterAll(async () => {
    await api.close();
  });

  it('is OpenAPI 3.1 with a bearer scheme and every route of the API', () => {
    expect(document.openapi).toBe('3.1.0');
    expect(document.components.securitySchemes.bearerAuth).toEqual({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    const operations = Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`));
    expect(operations.sort()).toEqual(
      [
        'POST /v1/auth/register',
        'POST /v1/auth/login',
        'POST /v1/auth/refresh',
        'POST /v1/auth/logout',
        'POST /v1/auth/password-reset',
        'POST /v1/auth/password-reset/confirm',
        'GET /v1/auth/me',
        'GET /v1/usage',
        'POST /v1/files',
        'DELETE /v1/files/{id}',
        'DELETE /v1/jobs/{id}',
        'GET /v1/files/{id}',
        'GET /v1/files/{id}/content',
        'GET /v1/job-types',
        'POST /v1/jobs',
        'GET /v1/jobs',
        'GET /v1/jobs/{id}',
        'POST /v1/jobs/{id}/cancel',
        'POST /v1/jobs/{id}/retry',
        'GET /v1/jobs/{id}/events',
        'GET /v1/jobs/events',
        'GET /v1/jobs/{id}/tasks',
        'GET /v1/admin/queues',
        'POST /v1/admin/queues/pause',
        'POST /v1/admin/queues/resume',
        'GET /v1/admin/dlq',
        'POST /v1/admin/dlq/{id}/replay',
        'GET /healthz',
        'GET /readyz',
        'GET /metrics',
      ].sort(),
    );
  });

  it('agrees with the ingress: every operation is routed by PUBLIC_ROUTES but the in-cluster ones, and every public route serves something', async () => {
    const paths = Object.keys(document.paths);
    expect(paths.filter((p) => !isPublicPath(p)).sort()).toEqual([...IN_CLUSTER_PATHS].sort());
    // The console's routes are served by the console build (tests/console checks each of them).
    for (const route of PUBLIC_ROUTES.filter((r) => !CONSOLE_ROUTES.includes(r))) {
      const served = [...paths, PATHS.openapi, PATHS.docs].filter((p) => isPublicPath(p, [route]));
      expect({ route: route.path, served: served.length > 0 }).toEqual({ route: route.path, served: true });
    }
    // What the ALB sends for each exact route is answered by the API itself.
    for (const route of PUBLIC_ROUTES.filter((r) => r.match === 'exact' && !CONSOLE_ROUTES.includes(r))) expect({ route: route.path, status: (await call(api, route.path)).status }).toEqual({ route: route.path, status: 200 });
  });

  it('documents problem responses and security on protected operations', () => {
    const submit = document.paths['/v1/jobs']?.post;
    expect(submit?.security).toEqual([{ bearerAuth: [] }]);
    for (const status of ['400', '401', '409', '413', '415', '429']) {
      expect(submit?.responses[status]?.content).toHaveProperty(['application/problem+json']);
    }
  });

  it('describes the input and result of every public job type, and of no internal one', () => {
    const submitBody = document.components.schemas.SubmitJobBody as { oneOf: unknown[]; discriminator: { mapping: Record<string, string> } };
    const publicTypes = publicJobTypes().map((definition) => definition.type);
    expect(Object.keys(submitBody.discriminator.mapping).sort()).toEqual([...publicTypes].sort());
    expect(submitBody.oneOf).toHaveLength(publicTypes.length);
    expect(submitBody.discriminator.mapping).not.toHaveProperty('email.send');
    expect(document.components.schemas).not.toHaveProperty(`${schemaName('email.send')}Input`);
    // A caller's job is typed by its type, results included, for the public types only.
    const job = document.components.schemas.Job as { oneOf: unknown[]; discriminator: { propertyName: string; mapping: Record<string, string> } };
    expect(job.discriminator.propertyName).toBe('type');
    expect(job.discriminator.mapping).toEqual(Object.fromEntries(publicTypes.map((type) => [type, `#/components/schemas/${schemaName(type)}Job`])));
    for (const type of publicTypes) expect(document.components.schemas).toHaveProperty(`${schemaName(type)}Result`);
    expect(document.components.schemas).not.toHaveProperty(`${schemaName('email.send')}Result`);
    expect(document.components.schemas.FileChecksumInput).toMatchObject({
      type: 'object',
      properties: { fileId: { type: 'string', format: 'uuid' }, algorithm: { enum: ['sha256', 'sha1', 'md5'], default: 'sha256' } },
      required: ['fileId'],
    });
  });

  it('says what files.checksum refuses of its fileIds, a file named twice, in the document and in /v1/job-types', async () => {
    const fileIds = { type: 'array', minItems: 1, maxItems: 10_000, uniqueItems: true };
    expect((document.components.schemas.FilesChecksumInput as { properties: Record<string, unknown> }).properties.fileIds).toMatchObject(fileIds);
    const listed = await call<{ items: { type: string; inputSchema: { properties: Record<string, unknown> } }[] }>(api, '/v1/job-types');
    expect(listed.body.items.find((item) => item.type === 'files.checksum')?.inputSchema.properties.fileIds).toMatchObject(fileIds);
  });

  it('says on every JSON request body what is refused of any JSON body, which its schema cannot say', () => {
    const undescribed: string[] = [];
    for (const [route, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations) as [string, { requestBody?: { description?: string; content: Record<string, unknown> } }][]) {
        if (!operation.requestBody?.content['application/json']) continue;
        const description = operation.requestBody.description ?? '';
        if (!['JSON_BODY_LIMIT_BYTES', `${MAX_JSON_DEPTH} levels`, 'NUL', 'surrogate', '__proto__', '1e+21'].every((named) => description.includes(named))) undescribed.push(`${method.toUpperCase()} ${route}`);
      }
    }
    expect(undescribed).toEqual([]);
  });

  it('documents the 400 of every operation that validates query parameters, headers or a body', () => {
    const undocumented: string[] = [];
    for (const [route, operations] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(operations) as [string, { parameters?: { in: string }[]; requestBody?: unknown; responses: Record<string, unknown> }][]) {
        const validates = operation.requestBody !== undefined || (operation.parameters ?? []).some((parameter) => parameter.in === 'query' || parameter.in === 'header');
        if (validates && !operation.responses['400']) undocumented.push(`${method.toUpperCase()} ${route}`);
      }
    }
    expect(undocumented).toEqual([]);
  });

  it('gives every operation an operationId and declares its security (public ones say [])', () => {
    const ids = new Set<string>();
    for (const [route, methods] of Object.entries(document.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        expect({ route, method, operationId: operation.operationId }).toEqual({ route, method, operationId: expect.stringMatching(/^[a-z][A-Za-z]+$/) });
        ids.add(operation.operationId as string);
        expect(Array.isArray(operation.security)).toBe(true);
      }
    }
    expect(ids.size).toBe(Object.values(document.paths).flatMap((methods) => Object.keys(methods)).length);
    expect(document.paths['/v1/job-types']?.get?.security).toEqual([]);
    expect(document.paths['/v1/admin/dlq']?.get?.security).toEqual([{ bearerAuth: [] }]);
  });

  it('is plain OpenAPI 3.1: no jsonSchemaDialect for viewers to trip on, no 3.2 keywords', () => {
    expect(document).not.toHaveProperty('jsonSchemaDialect');
    expect(JSON.stringify(document)).not.toContain('itemSchema');
  });

  it('passes redocly lint with the recommended rules, without an error', async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'pk-openapi-'));
    try {
      const file = path.join(directory, 'openapi.json');
      await writeFile(file, JSON.stringify(document));
      const cli = path.resolve(__dirname, '../../../node_modules/@redocly/cli/bin/cli.js');
      const { stdout } = await promisify(execFile)(process.execPath, [cli, 'lint', file, '--extends', 'recommended', '--format', 'json'], {
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
        maxBuffer: 16 << 20,
      }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
      const report = JSON.parse(stdout) as { totals: { errors: number }; problems: { severity: string; ruleId: string; message: string }[] };
      expect(report.problems.filter((problem) => problem.severity === 'error')).toEqual([]);
      expect(report.totals.errors).toBe(0);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('has no dangling references', () => {
    for (const ref of collectRefs(document)) {
      expect(ref).toMatch(/^#\/components\/schemas\//);
      expect(document.components.schemas).toHaveProperty([ref.slice('#/components/schemas/'.length)]);
    }
  });

  it('lists the public job types with their schemas at /v1/job-types', async () => {
    const response = await call<{ items: { type: string; inputSchema: Record<string, unknown>; outputSchema: Record<string, unknown> }[] }>(api, '/v1/job-types');
    expect(response.status).toBe(200);
    expect(response.body.items.map((item) => item.type).sort()).toEqual(publicJobTypes().map((definition) => definition.type).sort());
    const sleep = response.body.items.find((item) => item.type === 'sleep');
    expect(sleep?.inputSchema).toMatchObject({ type: 'object', properties: { ms: { type: 'integer', minimum: 0, maximum: 600_000 } } });
  });

  it('serves Swagger UI from local assets', async () => {
    const page = await call(api, '/docs');
    expect(page.status).toBe(200);
    expect(page.text).toContain('/docs/assets/swagger-ui-bundle.js');
    expect(page.text).not.toMatch(/https?:\/\//);
    const bundle = await fetch(`${api.baseUrl}/docs/assets/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toMatch(/javascript/);
    await bundle.arrayBuffer();
    const init = await call(api, '/docs/init.js');
    expect(init.text).toContain('"/openapi.json"');
  });
});
