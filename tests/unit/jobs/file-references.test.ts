/**
 * The registry against the submit path's file check: a job type whose input names a file in a
 * field the submit does not recognise (`source`, `file`) is accepted with another user's file
 * id, or one that does not exist, and fails only when a worker opens it. Every top-level
 * input field that holds file ids (a UUID string, or an array of them: what the console
 * offers a file picker for) must be one collectFileIds reads.
 */
import { z } from 'zod';
import { JOB_TYPES, type JobTypeDefinition } from '../../../services/contract';
import { collectFileIds } from '../../../services/core/jobs/submit';

const FILE_ID = '6f1c1b2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b';

interface Schema {
  type?: string;
  format?: string;
  items?: Schema;
  properties?: Record<string, Schema>;
}

const isUuid = (schema: Schema | undefined): boolean => schema?.type === 'string' && schema.format === 'uuid';

/** The input's top-level fields that hold file ids, each with a value of its shape. */
function fileFields(definition: JobTypeDefinition): { name: string; value: string | string[] }[] {
  const schema = z.toJSONSchema(definition.input, { io: 'input', unrepresentable: 'any' }) as Schema;
  return Object.entries(schema.properties ?? {}).flatMap(([name, property]): { name: string; value: string | string[] }[] => {
    if (isUuid(property)) return [{ name, value: FILE_ID }];
    if (property.type === 'array' && isUuid(property.items)) return [{ name, value: [FILE_ID] }];
    return [];
  });
}

/** The fields of the input whose file ids the submit would not check the owner of. */
function uncheckedFileFields(definition: JobTypeDefinition): string[] {
  return fileFields(definition)
    .filter(({ name, value }) => collectFileIds({ [name]: value }).length === 0)
    .map(({ name }) => name);
}

describe('job inputs: file references', () => {
  it.each(Object.values(JOB_TYPES as Record<string, JobTypeDefinition>).map((definition) => [definition.type, definition] as const))(
    '%s: every field holding a file id is one the submit checks the owner of',
    (_type, definition) => {
      expect(uncheckedFileFields(definition)).toEqual([]);
    },
  );

  it('finds the file fields the registry uses today, and a misnamed one', () => {
    expect(fileFields(JOB_TYPES['file.checksum']).map(({ name }) => name)).toEqual(['fileId']);
    expect(fileFields(JOB_TYPES['files.checksum']).map(({ name }) => name)).toEqual(['fileIds']);
    const misnamed = { ...JOB_TYPES['text.stats'], input: z.object({ source: z.uuid(), file: z.uuid(), inputFileId: z.uuid() }) };
    expect(uncheckedFileFields(misnamed)).toEqual(['source', 'file']);
  });
});
