import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { fileChecksum, filesChecksum } from '../../contract';
import { defineProcessor } from '../processor';

/**
 * The reduce step of files.checksum: its tasks (one file.checksum per file) are done; the
 * manifest lists each file's digest as `sha256sum` prints it (`<digest>  <file id>`, so
 * `sha256sum -c` reads it once the files are saved under their ids) and each failed
 * task a tolerated failure policy let through as a comment.
 */
export default defineProcessor(filesChecksum, async ({ input, tasks, files, signal }) => {
  const lines: string[] = [];
  let succeeded = 0;
  let failed = 0;
  for await (const task of tasks()) {
    const { fileId } = fileChecksum.input.parse(task.input);
    if (task.status === 'succeeded') {
      const { digest } = fileChecksum.output.parse(task.result);
      lines.push(`${digest}  ${fileId}`);
      succeeded += 1;
    } else {
      lines.push(`# ${fileId}: ${task.status}${task.error ? `: ${task.error.replace(/\s+/g, ' ')}` : ''}`);
      failed += 1;
    }
  }
  const manifest = Buffer.from(lines.length > 0 ? `${lines.join('\n')}\n` : '');
  signal.throwIfAborted();
  const saved = await files.saveOutput(`manifest.${input.algorithm}`, 'text/plain', Readable.from([manifest]));
  return {
    result: { algorithm: input.algorithm, files: input.fileIds.length, succeeded, failed, manifestSha256: createHash('sha256').update(manifest).digest('hex') },
    resultFileId: saved.id,
  };
});
