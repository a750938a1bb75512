import { createHash } from 'node:crypto';
import { fileChecksum } from '../../contract';
import { readChunks } from '../file-chunks';
import { defineProcessor } from '../processor';

export default defineProcessor(fileChecksum, async ({ input, files, signal, progress }) => {
  const { file, body } = await files.open(input.fileId);
  const hash = createHash(input.algorithm);
  for await (const chunk of readChunks(body, file.size, { signal, progress })) hash.update(chunk);
  return { result: { algorithm: input.algorithm, digest: hash.digest('hex') } };
});
