/**
 * A processor's outcome against its type's producesFile, which GET /v1/job-types shows
 * clients: the compiler refuses a processor that returns an output file its type does not
 * declare, or declares one and returns none. The checks are the @ts-expect-error lines
 * (`npm test` type-checks the tests); the assertions only run what compiles.
 */
import { z } from 'zod';
import { defineJobType, fileCompress, textStats } from '../../../services/contract';
import { defineProcessor } from '../../../services/worker/processor';

const common = { description: 'a test type', input: z.object({}).strict(), output: z.object({ size: z.number() }), timeoutMs: 30_000 };
const givesFile = defineJobType({ ...common, type: 'demo.file', producesFile: true });
const givesNone = defineJobType({ ...common, type: 'demo.plain' });

describe('processors: the output file a type declares', () => {
  it('keeps producesFile as declared, for the compiler to hold processors to', () => {
    const declared: true = fileCompress.producesFile;
    const undeclared: false = textStats.producesFile;
    expect([declared, undeclared, givesFile.producesFile, givesNone.producesFile]).toEqual([true, false, true, false]);
  });

  it('takes a processor whose outcome matches its type', async () => {
    const withFile = defineProcessor(givesFile, async () => ({ result: { size: 1 }, resultFileId: 'f' }));
    const withoutFile = defineProcessor(givesNone, async () => ({ result: { size: 1 } }));
    expect(withFile.definition).toBe(givesFile);
    expect(withoutFile.definition).toBe(givesNone);
  });

  it('refuses, at compile time, a processor that disagrees with its type', () => {
    // @ts-expect-error the type declares no output file: a resultFileId would reach the job unannounced.
    const unannounced = defineProcessor(givesNone, async () => ({ result: { size: 1 }, resultFileId: 'f' }));
    // @ts-expect-error the type declares an output file: every job of it must return one.
    const missing = defineProcessor(givesFile, async () => ({ result: { size: 1 } }));
    expect([unannounced.definition.type, missing.definition.type]).toEqual(['demo.plain', 'demo.file']);
  });
});
