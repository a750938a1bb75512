/**
 * Which input fields hold file ids is declared once, in the contract (FileId, read back by
 * fileFields): the submit checks the owner of each id they hold, the worker opens only those
 * files, the console offers a picker for them. A UUID field not declared with FileId is
 * flagged: if it holds a file id, nothing (submit, worker, console) treats it as one.
 */
import { z } from 'zod';
import { FileId, fileFields, fileReferences, JOB_TYPES, type JobTypeDefinition } from '../../../services/contract';

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
  it.each(TYPES)('%s: holds no UUID field that is not declared with FileId', (_type, definition) => {
    expect(undeclaredUuidFields(definition.input)).toEqual([]);
  });

  it('reads the declarations the registry uses, whatever a field is named, and tells an undeclared one', () => {
    expect(fileFields(JOB_TYPES['file.checksum'].input)).toEqual([{ name: 'fileId', multiple: false }]);
    expect(fileFields(JOB_TYPES['files.checksum'].input)).toEqual([{ name: 'fileIds', multiple: true }]);
    expect(fileFields(JOB_TYPES.echo.input)).toEqual([]);
    const named = z.object({ source: FileId, file: z.uuid() });
    expect(fileFields(named)).toEqual([{ name: 'source', multiple: false }]);
    expect(undeclaredUuidFields(named)).toEqual(['file']);
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
