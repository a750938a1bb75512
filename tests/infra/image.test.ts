/**
 * The service image, checked by reading it (no Docker engine here): the Dockerfile passes
 * the Docker language server's linter with every check at error level, and has the
 * properties the workloads rely on (pinned Node 20 slim base, multi-stage, production
 * dependencies and compiled JavaScript only, non-root, read-only root friendly, tini as
 * PID 1, the CLI on PATH, the entry points the workloads run). The content tag moves with
 * what the image is built from and with nothing else.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate, ValidationSeverity } from 'dockerfile-utils';
import { buildContextTag, dockerfileSources } from '../../platform/registry/build-context';
import { validateServiceImageArgs } from '../../platform/registry/image';
import { CONTAINER_COMMANDS } from '../../platform/workloads';
import { PORTS } from '../../services/contract';
import { REPO_ROOT } from '../../tools/offline/capture';

const TEXT = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
const dockerfile = DockerfileParser.parse(TEXT);
const instructions = dockerfile.getInstructions();

/** The instructions of each stage, keyed by the stage name (`AS x`). */
function stages(): Map<string, Instruction[]> {
  const out = new Map<string, Instruction[]>();
  let current: Instruction[] | undefined;
  for (const i of instructions) {
    if (i.getKeyword() === 'FROM') {
      const args = i.getArguments().map((a) => a.getValue());
      current = [];
      out.set(args[2] ?? `stage-${out.size}`, current);
    }
    current?.push(i);
  }
  return out;
}

const args = (i: Instruction) => i.getArguments().map((a) => a.getValue());
const jsonArgs = (i: Instruction) => ('getJSONStrings' in i && typeof i.getJSONStrings === 'function' ? (i.getJSONStrings() as { getJSONValue(): string }[]).map((j) => j.getJSONValue()) : []);
const flags = (i: Instruction) => ('getFlags' in i && typeof i.getFlags === 'function' ? (i.getFlags() as { getName(): string; getValue(): string | null }[]).map((f) => `${f.getName()}=${f.getValue() ?? ''}`) : []);
const runtime = () => stages().get('runtime') ?? [];
const of = (stage: Instruction[], keyword: string) => stage.filter((i) => i.getKeyword() === keyword);

describe('Dockerfile', () => {
  it('passes the Dockerfile linter (dockerfile-utils) with every check an error', () => {
    const strict = {
      deprecatedMaintainer: ValidationSeverity.ERROR,
      directiveCasing: ValidationSeverity.ERROR,
      emptyContinuationLine: ValidationSeverity.ERROR,
      instructionCasing: ValidationSeverity.ERROR,
      instructionCmdMultiple: ValidationSeverity.ERROR,
      instructionEntrypointMultiple: ValidationSeverity.ERROR,
      instructionHealthcheckMultiple: ValidationSeverity.ERROR,
      instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
      instructionWorkdirRelative: ValidationSeverity.ERROR,
    };
    expect(validate(TEXT, strict).map((d) => `${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
    // The linter is live: it flags what it should.
    expect(validate('FROM node:20.20.2-bookworm-slim\nCMD ["node","a.js"]\nCMD ["node","b.js"]\n', strict)).toHaveLength(1);
  });

  it('builds on Node 20 slim pinned to an exact release, in every stage', () => {
    const [arg] = instructions.filter((i) => i.getKeyword() === 'ARG');
    expect(args(arg as Instruction)[0]).toMatch(/^NODE_IMAGE=node:20\.\d+\.\d+-bookworm-slim(@sha256:[0-9a-f]{64})?$/);
    const froms = instructions.filter((i) => i.getKeyword() === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(3);
    for (const from of froms) expect(args(from)[0]).toBe('${NODE_IMAGE}');
    expect([...stages().keys()]).toEqual(['build', 'dependencies', 'runtime']);
  });

  it('ships production dependencies and compiled JavaScript only', () => {
    const deps = of(stages().get('dependencies') ?? [], 'RUN').map((i) => args(i).join(' ')).join('\n');
    expect(deps).toMatch(/npm ci --omit=dev/);
    const copies = of(runtime(), 'COPY').map((i) => ({ flags: flags(i), args: args(i) }));
    expect(copies).toEqual(
      expect.arrayContaining([
        { flags: ['from=dependencies'], args: ['/src/node_modules', './node_modules'] },
        { flags: ['from=build'], args: ['/src/dist/services', './dist/services'] },
      ]),
    );
    // From the context, only package.json and the SQL migrations (read at run time): no TypeScript sources.
    const fromContext = copies.filter((c) => c.flags.length === 0).flatMap((c) => c.args.slice(0, -1));
    expect(fromContext.sort()).toEqual(['package.json', 'services/migrations']);
  });

  it('runs as a numeric non-root user, writes only /tmp, with tini as PID 1 handing SIGTERM to node', () => {
    const users = of(runtime(), 'USER').map((i) => args(i)[0]);
    expect(users).toEqual(['1000:1000']);
    expect(of(runtime(), 'VOLUME').map((i) => jsonArgs(i))).toEqual([['/tmp']]);
    const [entrypoint] = of(runtime(), 'ENTRYPOINT');
    expect(jsonArgs(entrypoint as Instruction)).toEqual(['/usr/bin/tini', '--']);
    const installs = of(runtime(), 'RUN').map((i) => args(i).join(' ')).join('\n');
    expect(installs).toMatch(/apt-get install -y --no-install-recommends tini=\S+/);
    expect(installs).toMatch(/rm -rf \/var\/lib\/apt\/lists/);
  });

  it('defaults to the api entry point the workloads run, exposes the contract\'s ports and puts the platform CLI on PATH', () => {
    const [cmd] = of(runtime(), 'CMD');
    expect(jsonArgs(cmd as Instruction)).toEqual([...CONTAINER_COMMANDS.api]);
    expect(of(runtime(), 'EXPOSE').flatMap(args).map(Number)).toEqual([PORTS.api, PORTS.workerMetrics]);
    expect(of(runtime(), 'RUN').map((i) => args(i).join(' ')).join('\n')).toContain('ln -s /app/dist/services/cli/index.js /usr/local/bin/platform');
    for (const command of Object.values(CONTAINER_COMMANDS)) expect(command.find((a) => a.startsWith('/app/'))).toMatch(/^\/app\/dist\/services\//);
  });

  it('carries the web console: the build stage builds it into dist/services, which the runtime copies', () => {
    const build = stages().get('build') ?? [];
    expect(of(build, 'COPY').map(args)).toEqual(expect.arrayContaining([['services', './services']]));
    expect(of(build, 'RUN').map((i) => args(i).join(' '))).toContain('npm run build');
    const scripts = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.build).toContain('npm run build:console');
    expect(scripts['build:console']).toMatch(/^vite build services\/console\b/);
    const viteConfig = readFileSync(path.join(REPO_ROOT, 'services', 'console', 'vite.config.mts'), 'utf8');
    const outDir = /outDir: '([^']+)'/.exec(viteConfig)?.[1] ?? '';
    expect(path.resolve(REPO_ROOT, 'services', 'console', outDir)).toBe(path.join(REPO_ROOT, 'dist', 'services', 'console'));
    expect(of(runtime(), 'COPY').map(args)).toEqual(expect.arrayContaining([['/src/dist/services', './dist/services']]));
  });

  it('sends only what it copies: the .dockerignore is a whitelist of the COPY sources', () => {
    const ignore = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#'));
    expect(ignore[0]).toBe('*');
    const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    for (const source of new Set(dockerfileSources(TEXT))) expect(allowed.some((a) => source === a || source.startsWith(`${a}/`))).toBe(true);
  });
});

describe('content tag', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'pk-image-'));
    for (const f of ['Dockerfile', '.dockerignore', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) cpSync(path.join(REPO_ROOT, f), path.join(dir, f));
    mkdirSync(path.join(dir, 'services', 'migrations'), { recursive: true });
    writeFileSync(path.join(dir, 'services', 'api.ts'), 'export const a = 1;\n');
    writeFileSync(path.join(dir, 'services', 'migrations', '0001_x.sql'), 'SELECT 1;\n');
    writeFileSync(path.join(dir, 'README.md'), 'docs\n');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is 16 hex digits, the same for the same sources', () => {
    const tag = buildContextTag(dir);
    expect(tag).toMatch(/^[0-9a-f]{16}$/);
    expect(buildContextTag(dir)).toBe(tag);
  });

  it('changes with a copied source and with the Dockerfile, not with a file the image does not contain', () => {
    const tag = buildContextTag(dir);
    writeFileSync(path.join(dir, 'README.md'), 'other docs\n');
    mkdirSync(path.join(dir, 'services', 'node_modules'));
    writeFileSync(path.join(dir, 'services', 'node_modules', 'x.js'), '1');
    expect(buildContextTag(dir)).toBe(tag);
    writeFileSync(path.join(dir, 'services', 'api.ts'), 'export const a = 2;\n');
    const changed = buildContextTag(dir);
    expect(changed).not.toBe(tag);
    writeFileSync(path.join(dir, 'Dockerfile'), `${readFileSync(path.join(dir, 'Dockerfile'), 'utf8')}\n# a comment\n`);
    expect(buildContextTag(dir)).not.toBe(changed);
  });

  it('reads COPY sources in both forms, skips copies from other stages, refuses ADD and paths outside the context', () => {
    expect(dockerfileSources('FROM a AS b\nCOPY --chown=1000 x y ./\nCOPY ["a b", "c/"]\nCOPY --from=b /x /y\n')).toEqual(['x', 'y', 'a b']);
    expect(() => dockerfileSources('FROM a\nADD https://example.com/x.tgz /x\n')).toThrow(/uses ADD/);
    writeFileSync(path.join(dir, 'Dockerfile'), 'FROM a\nCOPY ../secrets /s\n');
    expect(() => buildContextTag(dir)).toThrow(/leaves the build context/);
    writeFileSync(path.join(dir, 'Dockerfile'), 'FROM a\nCOPY missing /m\n');
    expect(() => buildContextTag(dir)).toThrow(/copies missing, which does not exist/);
  });

  it('is built for at least one architecture from an absolute context', () => {
    expect(validateServiceImageArgs({ repositoryUrl: 'r', contextDir: REPO_ROOT })).toEqual([]);
    expect(validateServiceImageArgs({ repositoryUrl: 'r', contextDir: 'relative', platforms: [] })).toEqual(['contextDir relative must be an absolute path', 'platforms must name at least one architecture']);
  });
});
