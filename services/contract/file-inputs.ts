import { z } from 'zod';
import { FILE_ID_KEYWORD } from './file-id-keyword';

export { FILE_ID_KEYWORD };

/**
 * The schema of a field holding a file id, and the one declaration of which fields do: the
 * submit checks the owner of each id such a field holds, the worker opens only those files,
 * and the console offers a picker for them, all derived from where a type's input uses this
 * (fileFields). A field of another schema holding a file id is not a file reference anywhere.
 */
export const FileId = z.uuid().meta({ [FILE_ID_KEYWORD]: true });

/** A top-level input field that holds file ids: one (`multiple` false) or an array of them. */
export interface FileField {
  name: string;
  multiple: boolean;
}

interface SchemaNode {
  type?: unknown;
  items?: unknown;
  properties?: Record<string, SchemaNode>;
  [FILE_ID_KEYWORD]?: unknown;
}

const isFileIdNode = (node: unknown): boolean => typeof node === 'object' && node !== null && (node as SchemaNode)[FILE_ID_KEYWORD] === true;

const fieldsByInput = new WeakMap<z.ZodType, readonly FileField[]>();

/**
 * The fields of an input schema declared with FileId, read from its JSON Schema as clients
 * see it (so `.optional()`, `.default()` and array checks around a FileId count too). Only
 * the top level: a file id nested in free-form data (an echo payload) is data.
 */
export function fileFields(input: z.ZodType): readonly FileField[] {
  const known = fieldsByInput.get(input);
  if (known) return known;
  const schema = z.toJSONSchema(input, { io: 'input', unrepresentable: 'any' }) as SchemaNode;
  const fields = Object.entries(schema.properties ?? {}).flatMap(([name, node]): FileField[] => {
    if (isFileIdNode(node)) return [{ name, multiple: false }];
    if (node.type === 'array' && isFileIdNode(node.items)) return [{ name, multiple: true }];
    return [];
  });
  fieldsByInput.set(input, fields);
  return fields;
}

/** The file ids an input (as its schema parsed it) names, each with the field it came from (`input.fileIds.2`). */
export function fileReferences(input: z.ZodType, value: unknown): { field: string; fileId: string }[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  const record = value as Record<string, unknown>;
  return fileFields(input).flatMap(({ name, multiple }) => {
    const held = record[name];
    if (!multiple) return typeof held === 'string' ? [{ field: `input.${name}`, fileId: held }] : [];
    return Array.isArray(held) ? held.flatMap((item, index) => (typeof item === 'string' ? [{ field: `input.${name}.${index}`, fileId: item }] : [])) : [];
  });
}
