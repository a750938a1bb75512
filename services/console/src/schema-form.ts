/**
 * Turns a job type's input JSON Schema (as GET /v1/job-types serves it) into a plan of
 * form fields, and the values a person typed back into the input object. Pure: the React
 * form (SchemaForm.tsx) renders the plan. What the generator cannot render as a simple
 * control becomes a raw JSON field, and a schema that is not an object of properties
 * becomes one raw JSON editor for the whole input; the API validates either way.
 */
import { FILE_ID_KEYWORD } from '../../contract/file-id-keyword';

export type JsonSchema = { [key: string]: unknown };
export type SimpleValue = string | number | boolean;

interface FieldBase {
  name: string;
  required: boolean;
  description?: string;
}

export type Field =
  | (FieldBase & { kind: 'text'; defaultValue?: string; minLength?: number; maxLength?: number })
  | (FieldBase & { kind: 'number'; integer: boolean; minimum?: number; maximum?: number; defaultValue?: number })
  | (FieldBase & { kind: 'boolean'; defaultValue: boolean })
  | (FieldBase & { kind: 'enum'; options: SimpleValue[]; defaultValue?: SimpleValue })
  | (FieldBase & { kind: 'list'; itemType: 'string' | 'number' | 'integer'; options?: SimpleValue[]; defaultValue?: SimpleValue[] })
  | (FieldBase & { kind: 'file'; multiple: boolean })
  | (FieldBase & { kind: 'json'; defaultValue?: unknown });

export type FormPlan = { kind: 'fields'; fields: Field[] } | { kind: 'json'; reason: string };

/** What a control holds: text for most (one item per line for lists and multi-file pickers), a flag for a checkbox. */
export type FieldValue = string | boolean;
export type FormValues = Record<string, FieldValue>;

export interface FieldError {
  field: string;
  message: string;
}

export type BuiltInput = { ok: true; input: Record<string, unknown> } | { ok: false; errors: FieldError[] };

const MAX_REF_DEPTH = 8;

function isObject(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSimple(value: unknown): value is SimpleValue {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

/** Follows local `#/$defs/...` references, keeping the referring schema's own keys (description, default). */
function resolve(schema: JsonSchema, root: JsonSchema, depth = 0): JsonSchema {
  const ref = schema.$ref;
  if (typeof ref !== 'string' || depth >= MAX_REF_DEPTH) return schema;
  const match = /^#\/(\$defs|definitions)\/(.+)$/.exec(ref);
  const defs = match ? root[match[1] as string] : undefined;
  const target = match && isObject(defs) ? defs[decodeURIComponent((match[2] as string).replaceAll('~1', '/').replaceAll('~0', '~'))] : undefined;
  if (!isObject(target)) return schema;
  const { $ref: _ref, ...own } = schema;
  return { ...resolve(target, root, depth + 1), ...own };
}

/** A field the contract declares as holding a file id (FileId): the catalog's schema carries the keyword. */
function isFileId(schema: JsonSchema): boolean {
  return schema[FILE_ID_KEYWORD] === true;
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function enumOptions(schema: JsonSchema): SimpleValue[] | undefined {
  if (Array.isArray(schema.enum) && schema.enum.length > 0 && schema.enum.every(isSimple)) return schema.enum;
  if (isSimple(schema.const)) return [schema.const];
  return undefined;
}

function fieldFor(name: string, raw: JsonSchema, root: JsonSchema, required: boolean): Field {
  const schema = resolve(raw, root);
  const base: FieldBase = { name, required, ...(typeof schema.description === 'string' ? { description: schema.description } : {}) };
  const fallback: Field = { ...base, kind: 'json', ...(schema.default !== undefined ? { defaultValue: schema.default } : {}) };
  const options = enumOptions(schema);
  if (options) return { ...base, kind: 'enum', options, ...(isSimple(schema.default) ? { defaultValue: schema.default } : {}) };
  switch (schema.type) {
    case 'string':
      if (isFileId(schema)) return { ...base, kind: 'file', multiple: false };
      return {
        ...base,
        kind: 'text',
        ...(typeof schema.default === 'string' ? { defaultValue: schema.default } : {}),
        ...(numberOrUndefined(schema.minLength) !== undefined ? { minLength: schema.minLength as number } : {}),
        ...(numberOrUndefined(schema.maxLength) !== undefined ? { maxLength: schema.maxLength as number } : {}),
      };
    case 'number':
    case 'integer': {
      const minimum = numberOrUndefined(schema.minimum);
      const maximum = numberOrUndefined(schema.maximum);
      const defaultValue = numberOrUndefined(schema.default);
      return {
        ...base,
        kind: 'number',
        integer: schema.type === 'integer',
        ...(minimum !== undefined ? { minimum } : {}),
        ...(maximum !== undefined ? { maximum } : {}),
        ...(defaultValue !== undefined ? { defaultValue } : {}),
      };
    }
    case 'boolean':
      // A checkbox cannot say "not given": an optional flag without a default is a choice of three.
      if (typeof schema.default === 'boolean') return { ...base, kind: 'boolean', defaultValue: schema.default };
      return required ? { ...base, kind: 'boolean', defaultValue: false } : { ...base, kind: 'enum', options: [true, false] };
    case 'array': {
      const items = isObject(schema.items) ? resolve(schema.items, root) : undefined;
      if (!items) return fallback;
      if (isFileId(items)) return { ...base, kind: 'file', multiple: true };
      const itemOptions = enumOptions(items);
      const itemType = items.type;
      if (itemType !== 'string' && itemType !== 'number' && itemType !== 'integer') return fallback;
      const defaultValue = Array.isArray(schema.default) && schema.default.every(isSimple) ? schema.default : undefined;
      return { ...base, kind: 'list', itemType, ...(itemOptions ? { options: itemOptions } : {}), ...(defaultValue ? { defaultValue } : {}) };
    }
    default:
      return fallback;
  }
}

/** The form for a job type's input schema. */
export function planForm(schema: unknown): FormPlan {
  if (!isObject(schema)) return { kind: 'json', reason: 'the input schema is not a JSON Schema object' };
  const root = resolve(schema, schema);
  if (root.type !== 'object') return { kind: 'json', reason: 'the input is not an object of named fields' };
  if (root.properties !== undefined && !isObject(root.properties)) return { kind: 'json', reason: 'the input schema\'s properties are malformed' };
  const required = new Set(Array.isArray(root.required) ? root.required.filter((name): name is string => typeof name === 'string') : []);
  const properties = (root.properties ?? {}) as JsonSchema;
  const fields = Object.entries(properties).map(([name, property]) => (isObject(property) ? fieldFor(name, property, schema, required.has(name)) : ({ name, required: required.has(name), kind: 'json' } as Field)));
  return { kind: 'fields', fields };
}

/** The values a fresh form starts with: the schema's defaults, empty otherwise. */
export function initialValues(fields: readonly Field[]): FormValues {
  const values: FormValues = {};
  for (const field of fields) {
    switch (field.kind) {
      case 'boolean':
        values[field.name] = field.defaultValue;
        break;
      case 'file':
        values[field.name] = '';
        break;
      case 'enum':
        values[field.name] = field.defaultValue !== undefined ? encodeOption(field.defaultValue) : '';
        break;
      case 'list':
        values[field.name] = field.defaultValue ? field.defaultValue.map(String).join('\n') : '';
        break;
      case 'json':
        values[field.name] = field.defaultValue !== undefined ? JSON.stringify(field.defaultValue, null, 2) : '';
        break;
      default:
        values[field.name] = field.defaultValue !== undefined ? String(field.defaultValue) : '';
    }
  }
  return values;
}

/** An enum option as a <select> value: its JSON text, so 1 and "1" stay apart. */
export function encodeOption(option: SimpleValue): string {
  return JSON.stringify(option);
}

function parseNumber(text: string, integer: boolean): number | string {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) return 'must be a number';
  if (integer && !Number.isInteger(value)) return 'must be a whole number';
  return value;
}

/** The non-blank lines of a text, trimmed. */
export function splitLines(text: string): string[] {
  return text.split('\n').map((line) => line.trim()).filter((line) => line !== '');
}

type Converted = { value: unknown } | { error: string } | { omit: true };

function convert(field: Field, raw: FieldValue | undefined): Converted {
  const text = typeof raw === 'string' ? raw : '';
  const empty = text.trim() === '';
  switch (field.kind) {
    case 'boolean':
      return { value: raw === true };
    case 'file': {
      if (field.multiple) {
        const ids = splitLines(text);
        if (ids.length === 0) return field.required ? { error: 'choose at least one file' } : { omit: true };
        return { value: ids };
      }
      if (empty) return field.required ? { error: 'choose a file' } : { omit: true };
      return { value: text.trim() };
    }
    case 'enum': {
      if (empty) return field.required ? { error: 'choose a value' } : { omit: true };
      const option = field.options.find((candidate) => encodeOption(candidate) === text);
      return option === undefined ? { error: 'is not one of the choices' } : { value: option };
    }
    case 'number': {
      if (empty) return field.required ? { error: 'is required' } : { omit: true };
      const value = parseNumber(text.trim(), field.integer);
      if (typeof value === 'string') return { error: value };
      if (field.minimum !== undefined && value < field.minimum) return { error: `must be at least ${field.minimum}` };
      if (field.maximum !== undefined && value > field.maximum) return { error: `must be at most ${field.maximum}` };
      return { value };
    }
    case 'list': {
      const items = splitLines(text);
      if (items.length === 0) return field.required ? { error: 'give at least one value, one per line' } : { omit: true };
      if (field.itemType === 'string') return { value: items };
      const numbers = items.map((item) => parseNumber(item, field.itemType === 'integer'));
      const bad = numbers.findIndex((value) => typeof value === 'string');
      return bad >= 0 ? { error: `line ${bad + 1} ${numbers[bad] as string}` } : { value: numbers };
    }
    case 'json': {
      if (empty) return field.required ? { error: 'is required (JSON)' } : { omit: true };
      try {
        return { value: JSON.parse(text) as unknown };
      } catch {
        return { error: 'is not valid JSON' };
      }
    }
    case 'text':
      if (text === '') return field.required ? { error: 'is required' } : { omit: true };
      return { value: text };
  }
}

/** The input object the values stand for, or what is wrong with them, per field. */
export function buildInput(fields: readonly Field[], values: FormValues): BuiltInput {
  const input: Record<string, unknown> = {};
  const errors: FieldError[] = [];
  for (const field of fields) {
    const converted = convert(field, values[field.name]);
    if ('error' in converted) errors.push({ field: field.name, message: converted.error });
    else if ('value' in converted) input[field.name] = converted.value;
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, input };
}

/** The whole input typed as JSON (the raw editor): it must be an object. */
export function parseRawInput(text: string): BuiltInput {
  try {
    const value = JSON.parse(text) as unknown;
    if (!isObject(value)) return { ok: false, errors: [{ field: 'input', message: 'must be a JSON object' }] };
    return { ok: true, input: value };
  } catch (error) {
    return { ok: false, errors: [{ field: 'input', message: `is not valid JSON (${(error as Error).message})` }] };
  }
}
