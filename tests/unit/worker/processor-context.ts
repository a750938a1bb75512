import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FileView, JobTypeDefinition } from '../../../services/contract';
import { NotFoundError } from '../../../services/core/errors';
import { createLogger } from '../../../services/core/logger';
import { FilesystemObjectStore } from '../../../services/core/storage/filesystem';
import { createMailDrop } from '../../../services/worker/mail-drop';
import type { ProcessorContext, TaskOutcome } from '../../../services/worker/processor';

export interface StoredTestFile {
  view: FileView;
  key: string;
}

/**
 * What a worker gives a processor, built over a real filesystem object store in a temp
 * directory, with an in-memory file registry instead of PostgreSQL.
 */
export class ProcessorTestBed {
  readonly files = new Map<string, StoredTestFile>();
  /** Output files by job id: one per job, replaced on re-run, like the files table's unique produced_by_job_id. */
  readonly outputs = new Map<string, StoredTestFile>();
  readonly progress: number[] = [];
  private readonly log = createLogger({ service: 'processor-test', level: 'silent' });

  private constructor(
    readonly root: string,
    readonly store: FilesystemObjectStore,
  ) {}

  static async create(): Promise<ProcessorTestBed> {
    const root = await mkdtemp(path.join(os.tmpdir(), 'pk-processors-'));
    return new ProcessorTestBed(root, new FilesystemObjectStore({ root }));
  }

  async destroy(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }

  async addFile(name: string, content: Buffer | string, contentType = 'application/octet-stream'): Promise<FileView> {
    const id = randomUUID();
    const key = `files/owner/${id}`;
    const data = Buffer.from(content);
    const stored = await this.store.put(key, data, { contentType });
    const view: FileView = { id, name, size: stored.size, contentType, sha256: stored.sha256, createdAt: new Date().toISOString() };
    this.files.set(id, { view, key });
    return view;
  }

  async read(key: string): Promise<Buffer> {
    return Buffer.concat(await (await this.store.get(key)).toArray());
  }

  context<T extends JobTypeDefinition>(
    definition: T,
    rawInput: unknown,
    options: { jobId?: string; signal?: AbortSignal; tasks?: TaskOutcome[] } = {},
  ): ProcessorContext<T> {
    const tasks = options.tasks ?? [];
    const jobId = options.jobId ?? randomUUID();
    return {
      jobId,
      ownerId: 'owner',
      attempt: 1,
      input: definition.input.parse(rawInput) as ProcessorContext<T>['input'],
      files: {
        open: async (fileId) => {
          const file = this.files.get(fileId);
          if (!file) throw new NotFoundError(`file ${fileId} not found`);
          return { file: file.view, body: await this.store.get(file.key, { signal: options.signal }) };
        },
        saveOutput: async (name, contentType, body) => {
          const key = `outputs/${jobId}/${name}`;
          const stored = await this.store.put(key, body, { contentType, signal: options.signal });
          const id = this.outputs.get(jobId)?.view.id ?? randomUUID();
          const view: FileView = { id, name, size: stored.size, contentType, sha256: stored.sha256, createdAt: new Date().toISOString() };
          this.outputs.set(jobId, { view, key });
          return view;
        },
      },
      mailDrop: createMailDrop(this.store),
      async *tasks() {
        yield* tasks;
      },
      signal: options.signal ?? new AbortController().signal,
      progress: (percent) => this.progress.push(percent),
      log: this.log,
    };
  }
}
