import { csvSummary, defineJobType, fileChecksum, fileCompress, FileId, fileMemoryBytes, JOB_TYPES, textStats, type FileMemoryBounds, type JobTypeDefinition } from '../../../services/contract';
import { z } from 'zod';

const MiB = 1_048_576;
const fileId = '6f1c1b2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b';

/** What a definition reserves for an input and a file size (0: it declares nothing for that input). */
function reserved(definition: JobTypeDefinition, input: Record<string, unknown>, fileBytes: number): number {
  const declared = definition.fileMemory?.(input);
  return declared ? fileMemoryBytes(declared, fileBytes) : 0;
}

describe('file memory: what a file job reserves of its worker\'s budget', () => {
  it('is the least of the bounds for the file\'s size, in whole bytes', () => {
    const bounds: FileMemoryBounds = [
      { bytes: 0, perFileByte: 16 },
      { bytes: 1_000, perFileByte: 1.5 },
      { bytes: 5_000, perFileByte: 0 },
    ];
    expect([0, 10, 100, 101, 3_000, 10_000].map((size) => fileMemoryBytes(bounds, size))).toEqual([0, 160, 1_150, 1_152, 5_000, 5_000]);
  });

  it('is declared by the types whose memory grows with their file, for the file their input names', () => {
    const declaring = Object.values(JOB_TYPES as Record<string, JobTypeDefinition>)
      .filter((definition) => definition.fileMemory)
      .map((definition) => definition.type)
      .sort();
    expect(declaring).toEqual(['csv.summary', 'file.compress', 'text.stats']);
    expect(textStats.fileMemory?.({ fileId })).toBeDefined();
    expect(csvSummary.fileMemory?.({ fileId, delimiter: ',', header: true })).toBeDefined();
    expect(fileCompress.fileMemory?.({ fileId, format: 'brotli' })).toBeDefined();
    // gzip's state is a fixed few hundred kilobytes; a checksum streams in constant memory.
    expect(fileCompress.fileMemory?.({ fileId, format: 'gzip' })).toBeUndefined();
    expect(fileChecksum.fileMemory).toBeUndefined();
  });

  it('is refused for a type without exactly one FileId field holding one file: the worker would not know which file it grows with', () => {
    const declare = (input: z.ZodObject) =>
      defineJobType({ type: 'probe', description: 'probe', input, output: z.object({}), timeoutMs: 1_000, fileMemory: () => [{ bytes: 1, perFileByte: 1 }] });
    expect(() => declare(z.object({ fileId: FileId }))).not.toThrow();
    expect(() => declare(z.object({ fileId: z.uuid() }))).toThrow('job type probe: fileMemory needs exactly one FileId field holding one file, not none');
    expect(() => declare(z.object({ fileIds: z.array(FileId) }))).toThrow('not fileIds');
    expect(() => declare(z.object({ fileId: FileId, otherFileId: FileId }))).toThrow('not fileId, otherFileId');
  });

  it.each([
    ['text.stats', textStats, { fileId }],
    ['csv.summary', csvSummary, { fileId, delimiter: ',', header: true }],
    ['file.compress to brotli', fileCompress, { fileId, format: 'brotli' }],
  ] as const)('%s: grows with the file, never shrinks, and stops growing at a ceiling', (_name, definition, input) => {
    const sizes = [0, 1, 1_024, MiB, 8 * MiB, 25 * MiB, 100 * MiB, 1_024 * MiB, 100 * 1_024 * MiB];
    const amounts = sizes.map((size) => reserved(definition, input, size));
    amounts.slice(1).forEach((amount, index) => expect(amount).toBeGreaterThanOrEqual(amounts[index]!));
    expect(amounts.every(Number.isSafeInteger)).toBe(true);
    expect(amounts.at(-1)).toBe(amounts.at(-2));
  });

  // The worst peak of each size over the shapes bench/file-job-memory.ts measures (bench/FINDINGS.md):
  // lowering a bound below one of these needs a new measurement first.
  it.each([
    ['text.stats', textStats, { fileId }, [[0.25, 3.0], [1, 11.9], [4, 12.9], [8, 20.0], [16, 24.1], [25, 38.2], [50, 62.9], [100, 108.6]]],
    ['csv.summary', csvSummary, { fileId, delimiter: ',', header: true }, [[0.25, 1.0], [1, 2.6], [4, 9.0], [8, 9.1], [16, 15.1], [25, 25.9], [40, 28.9], [60, 32.9]]],
    ['file.compress to brotli', fileCompress, { fileId, format: 'brotli' }, [[0.25, 2.4], [1, 3.3], [4, 7.5], [8, 11.9], [16, 13.7], [25, 13.7]]],
  ] as const)('%s: covers the peaks measured', (_name, definition, input, peaks) => {
    const short = peaks.filter(([fileMiB, peakMiB]) => reserved(definition, input, fileMiB * MiB) < peakMiB * MiB);
    expect(short).toEqual([]);
  });
});
