/**
 * Which input fields hold file ids is declared once, in the contract (FileId, read back by
 * fileFields). The submit's owner check still finds them by name (collectFileIds), so this
 * holds every declared type's FileId fields to the fields the submit reads: a type whose
 * FileId field the submit would skip (`source`) would take another user's file id, or one
 * that does not exist, and fail only when a worker opens it. And a UUID field not declared
 * with FileId is flagged: if it holds a file id, nothing (submit, worker, console) treats it as one.
 */
import { z } from 'zod';
import { FileId, fileFields, fileReferences, JOB_TYPES, type JobTypeDefinition } from '../../../services/contract';
import { collectFileIds } from '../../../services/core/jobs/submit';

const FILE_ID = '6f1c1b2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b';

/** An input holding a file id in every declared file field of the schema. */
function inputNamingFiles(input: z.ZodType): Record<string, string | string[]> {
  return Object.fromEntries(fileFields(input).map(({ name, multiple }) => [name, multiple ? [FILE_ID] : FILE_ID]));
}

/** Where the submit and the contract disagree about an input's file fields: [declared but not checked, checked but not declared]. */
function disagreement(input: z.ZodType): { unchecked: string[]; undeclared: string[] } {
  const value = inputNamingFiles(input);
  const checked = collectFileIds(value).map(({ field }) => field);
  const declared = fileReferences(input, value).map(({ field }) => field);
  return { unchecked: declared.filter((field) => !checked.includes(field)), undeclared: checked.filter((field) => !declared.includes(field)) };
}

/** Top-level UUID fields (or arrays of them) not declared with FileId. */
function undeclaredUuidFields(input: z.ZodType): string[] {
  const schema = z.toJSONSchema(input, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, { type?: string; format?: string; items?: { format?: string } }> };
  const declared = new Set(fileFields(input).map(({ name }) => name));
  return Object.entries(schema.properties ?? {})
    .filter(([name, property]) => !declared.has(name) && (property.format === 'uuid' || (property.type === 'array' && property.items?.format === 'uuid')))
    .map(([name]) => name);
}

const TYPES = Object.values(JOB_TYPES as Record<string, JobTypeDefinition>).map((definition) => [definition.type, definition] as const);

describe('job inputs: file references, declared once', () => {
  it.each(TYPES)('%s: the submit checks the owner of exactly the fields declared with FileId', (_type, definition) => {
    expect(disagreement(definition.input)).toEqual({ unchecked: [], undeclared: [] });
  });

  it.each(TYPES)('%s: holds no UUID field that is not declared with FileId', (_type, definition) => {
    expect(undeclaredUuidFields(definition.input)).toEqual([]);
  });

  it('reads the declarations the registry uses, and tells a misnamed or undeclared file field', () => {
    expect(fileFields(JOB_TYPES['file.checksum'].input)).toEqual([{ name: 'fileId', multiple: false }]);
    expect(fileFields(JOB_TYPES['files.checksum'].input)).toEqual([{ name: 'fileIds', multiple: true }]);
    expect(fileFields(JOB_TYPES.echo.input)).toEqual([]);
    const misnamed = z.object({ source: FileId, inputFileId: FileId, file: z.uuid() });
    expect(disagreement(misnamed)).toEqual({ unchecked: ['input.source'], undeclared: [] });
    expect(undeclaredUuidFields(misnamed)).toEqual(['file']);
  });

  it('names each file an input holds with its field, ignoring file ids inside free-form data', () => {
    const input = z.object({ fileId: FileId, moreFileIds: z.array(FileId).optional(), payload: z.unknown() });
    expect(fileReferences(input, { fileId: 'a', moreFileIds: ['b', 'c'], payload: { fileId: 'd' } })).toEqual([
      { field: 'input.fileId', fileId: 'a' },
      { field: 'input.moreFileIds.0', fileId: 'b' },
      { field: 'input.moreFileIds.1', fileId: 'c' },
    ]);
  });
});
