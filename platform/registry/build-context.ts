import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { DockerfileParser } from 'dockerfile-ast';

/** Directories never part of an image's sources, whatever a COPY names. */
const NEVER_COPIED = new Set(['node_modules', 'dist', '.data', '.git', '.tmp', 'coverage']);

/**
 * What the Dockerfile's build-context COPY instructions name (sources of `COPY` without
 * `--from`), in order of appearance. ADD is not supported: it fetches URLs and unpacks
 * archives, which a content hash of the context would not see.
 */
export function dockerfileSources(dockerfileText: string): string[] {
  const sources: string[] = [];
  for (const instruction of DockerfileParser.parse(dockerfileText).getInstructions()) {
    const keyword = instruction.getKeyword();
    if (keyword === 'ADD') throw new Error('the Dockerfile uses ADD; use COPY so the image tag covers every source');
    if (keyword !== 'COPY') continue;
    const flags = 'getFlags' in instruction && typeof instruction.getFlags === 'function' ? (instruction.getFlags() as { getName(): string }[]) : [];
    if (flags.some((flag) => flag.getName() === 'from')) continue;
    // The exec (JSON) form is parsed as JSON: the parser's own JSON strings lose their spaces.
    const content = instruction.getArgumentsContent() ?? '';
    const jsonForm = content.trimStart().startsWith('[');
    const args = jsonForm ? (JSON.parse(content.slice(content.indexOf('['))) as string[]) : instruction.getArguments().map((a) => a.getValue());
    sources.push(...args.slice(0, -1));
  }
  return sources;
}

function filesUnder(root: string, relative: string): string[] {
  const absolute = path.join(root, relative);
  const stat = statSync(absolute, { throwIfNoEntry: false });
  if (!stat) throw new Error(`the Dockerfile copies ${relative}, which does not exist under ${root}`);
  if (stat.isFile()) return [relative];
  if (!stat.isDirectory()) return [];
  return readdirSync(absolute)
    .filter((entry) => !NEVER_COPIED.has(entry))
    .flatMap((entry) => filesUnder(root, path.join(relative, entry)));
}

/**
 * A content tag for the image: SHA-256 over the Dockerfile, the .dockerignore and every
 * file its COPY instructions take from the context (path and bytes, in a stable order),
 * as 16 hex digits. The same sources give the same tag on any machine, so a rerun pushes
 * nothing new and an ECR repository with immutable tags never sees one tag move. It may
 * cover more than Docker sends (files .dockerignore drops), never less.
 */
export function buildContextTag(root: string, dockerfile = 'Dockerfile'): string {
  const dockerfileText = readFileSync(path.join(root, dockerfile), 'utf8');
  const files = new Set<string>([dockerfile, '.dockerignore']);
  for (const source of dockerfileSources(dockerfileText)) {
    const normalised = path.normalize(source).replace(/\/$/, '');
    if (normalised.startsWith('..') || path.isAbsolute(normalised)) throw new Error(`COPY source ${source} leaves the build context`);
    for (const file of filesUnder(root, normalised === '' ? '.' : normalised)) files.add(path.normalize(file));
  }
  const hash = createHash('sha256');
  for (const file of [...files].sort()) {
    const content = statSync(path.join(root, file), { throwIfNoEntry: false }) ? readFileSync(path.join(root, file)) : Buffer.alloc(0);
    hash.update(`${file.split(path.sep).join('/')}\0${content.length}\0`);
    hash.update(content);
  }
  return hash.digest('hex').slice(0, 16);
}
