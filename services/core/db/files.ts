import type { Pool, PoolClient } from 'pg';
import { inTransaction } from './transaction';

export interface FileRecord {
  id: string;
  ownerId: string;
  name: string;
  contentType: string;
  size: number;
  sha256: string;
  storageKey: string;
  producedByJobId: string | null;
  createdAt: Date;
}

export type NewFile = Omit<FileRecord, 'createdAt' | 'producedByJobId'>;
/** What an owner may store in all. */
export interface StorageQuota {
  files: number;
  bytes: number;
}
export type NewJobOutputFile = NewFile & { producedByJobId: string };

interface FileRow {
  id: string;
  owner_id: string;
  name: string;
  content_type: string;
  size: number;
  sha256: string;
  storage_key: string;
  produced_by_job_id: string | null;
  created_at: Date;
}

const COLUMNS = 'id, owner_id, name, content_type, size, sha256, storage_key, produced_by_job_id, created_at';

function toRecord(row: FileRow): FileRecord {
  return {
    id: row.id,
    ownerId: row.owner_id,
    name: row.name,
    contentType: row.content_type,
    size: row.size,
    sha256: row.sha256,
    storageKey: row.storage_key,
    producedByJobId: row.produced_by_job_id,
    createdAt: row.created_at,
  };
}

/** Files table access. Lookups by id are always scoped to an owner, so no caller can forget the check. */
export interface FileRepository {
  insert(file: NewFile): Promise<FileRecord>;
  /**
   * Inserts an upload only if the owner's files, this one included, stay within `quota`;
   * undefined when they would not. Uploads of one owner serialise on the owner's row here,
   * so two that stream at once cannot both pass on the same count.
   */
  insertWithinQuota(file: NewFile, quota: StorageQuota): Promise<FileRecord | undefined>;
  findForOwner(ownerId: string, fileId: string): Promise<FileRecord | undefined>;
  /** Which of the given ids are files of this owner. */
  findOwnedIds(ownerId: string, fileIds: string[]): Promise<Set<string>>;
  findByProducingJob(jobId: string): Promise<FileRecord | undefined>;
  /** Files and bytes the owner stores, leaving out the output of `exceptJobId` (which a re-run replaces). */
  storedBy(ownerId: string, exceptJobId: string): Promise<{ files: number; bytes: number }>;
  /**
   * Registers a job's output, or updates the job's existing output row in place (same id)
   * when a re-run after a crash stores it again: one row per job, whatever the number of runs.
   * Under a lock on the owner, as uploads are: undefined when the owner's other files and this
   * one would pass the quota.
   */
  upsertJobOutputWithinQuota(file: NewJobOutputFile, quota: StorageQuota): Promise<FileRecord | undefined>;
  /** Removes a job's output row; the storage key it named, if there was one. */
  deleteJobOutput(jobId: string): Promise<string | undefined>;
}

export function createFileRepository(pool: Pool): FileRepository {
  /**
   * Runs `work` in a transaction that first locks the owner's row, in a statement of its own:
   * a quota count `work` reads then sees every file registered before, and files registered
   * at the same time for one owner take turns.
   */
  const underOwnerLock = <T>(ownerId: string, work: (client: PoolClient) => Promise<T>): Promise<T> =>
    inTransaction(pool, async (client) => {
      await client.query({ name: 'files_lock_owner', text: 'SELECT 1 FROM users WHERE id = $1 FOR UPDATE', values: [ownerId] });
      return work(client);
    });

  return {
    async insert(file) {
      const { rows } = await pool.query<FileRow>({
        name: 'files_insert',
        text: `INSERT INTO files (id, owner_id, name, content_type, size, sha256, storage_key)
               VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
        values: [file.id, file.ownerId, file.name, file.contentType, file.size, file.sha256, file.storageKey],
      });
      return toRecord(rows[0] as FileRow);
    },
    async insertWithinQuota(file, quota) {
      return underOwnerLock(file.ownerId, async (client) => {
        const { rows } = await client.query<FileRow>({
          name: 'files_insert_within_quota',
          text: `INSERT INTO files (id, owner_id, name, content_type, size, sha256, storage_key)
                 SELECT $1, $2, $3, $4, $5::bigint, $6, $7
                   FROM (SELECT count(*) AS files, COALESCE(sum(size), 0) AS bytes FROM files WHERE owner_id = $2::uuid) AS used
                  WHERE used.files + 1 <= $8::bigint AND used.bytes + $5::bigint <= $9::bigint
                 RETURNING ${COLUMNS}`,
          values: [file.id, file.ownerId, file.name, file.contentType, file.size, file.sha256, file.storageKey, quota.files, quota.bytes],
        });
        return rows[0] && toRecord(rows[0]);
      });
    },
    async findForOwner(ownerId, fileId) {
      const { rows } = await pool.query<FileRow>({
        name: 'files_find_for_owner',
        text: `SELECT ${COLUMNS} FROM files WHERE id = $1 AND owner_id = $2`,
        values: [fileId, ownerId],
      });
      return rows[0] && toRecord(rows[0]);
    },
    async findOwnedIds(ownerId, fileIds) {
      if (fileIds.length === 0) return new Set();
      const { rows } = await pool.query<{ id: string }>({
        name: 'files_find_owned_ids',
        text: 'SELECT id FROM files WHERE owner_id = $1 AND id = ANY($2::uuid[])',
        values: [ownerId, fileIds],
      });
      return new Set(rows.map((row) => row.id));
    },
    async findByProducingJob(jobId) {
      const { rows } = await pool.query<FileRow>({
        name: 'files_find_by_producing_job',
        text: `SELECT ${COLUMNS} FROM files WHERE produced_by_job_id = $1`,
        values: [jobId],
      });
      return rows[0] && toRecord(rows[0]);
    },
    async storedBy(ownerId, exceptJobId) {
      const { rows } = await pool.query<{ files: number; bytes: string }>({
        name: 'files_stored_by',
        text: `SELECT count(*)::int AS files, COALESCE(sum(size), 0)::bigint AS bytes FROM files
                WHERE owner_id = $1 AND produced_by_job_id IS DISTINCT FROM $2::uuid`,
        values: [ownerId, exceptJobId],
      });
      return { files: rows[0]?.files ?? 0, bytes: Number(rows[0]?.bytes ?? 0) };
    },
    async deleteJobOutput(jobId) {
      const { rows } = await pool.query<{ storage_key: string }>({
        name: 'files_delete_job_output',
        text: 'DELETE FROM files WHERE produced_by_job_id = $1 RETURNING storage_key',
        values: [jobId],
      });
      return rows[0]?.storage_key;
    },
    async upsertJobOutputWithinQuota(file, quota) {
      return underOwnerLock(file.ownerId, async (client) => {
        const { rows } = await client.query<FileRow>({
          name: 'files_upsert_job_output_within_quota',
          text: `INSERT INTO files (id, owner_id, name, content_type, size, sha256, storage_key, produced_by_job_id)
                 SELECT $1, $2, $3, $4, $5::bigint, $6, $7, $8
                   FROM (SELECT count(*) AS files, COALESCE(sum(size), 0) AS bytes FROM files
                          WHERE owner_id = $2::uuid AND produced_by_job_id IS DISTINCT FROM $8::uuid) AS used
                  WHERE used.files + 1 <= $9::bigint AND used.bytes + $5::bigint <= $10::bigint
                 ON CONFLICT (produced_by_job_id) DO UPDATE SET
                   name = EXCLUDED.name,
                   content_type = EXCLUDED.content_type,
                   size = EXCLUDED.size,
                   sha256 = EXCLUDED.sha256,
                   storage_key = EXCLUDED.storage_key
                 RETURNING ${COLUMNS}`,
          values: [file.id, file.ownerId, file.name, file.contentType, file.size, file.sha256, file.storageKey, file.producedByJobId, quota.files, quota.bytes],
        });
        return rows[0] && toRecord(rows[0]);
      });
    },
  };
}
