import { buildInput, encodeOption, initialValues, parseRawInput, planForm, type Field } from '../../../services/console/src/schema-form';
import { describeJobTypes } from '../../../services/api/job-type-catalog';

function fieldsOf(schema: unknown): Field[] {
  const plan = planForm(schema);
  if (plan.kind !== 'fields') throw new Error(`expected fields, got raw JSON: ${plan.reason}`);
  return plan.fields;
}

describe('schema-to-form generator (services/console/src/schema-form.ts)', () => {
  it('renders every registered job type without falling back to raw JSON for the whole input', () => {
    const plans = Object.fromEntries(describeJobTypes().map((type) => [type.type, planForm(type.inputSchema)]));
    expect(Object.values(plans).every((plan) => plan.kind === 'fields')).toBe(true);
    const kinds = (type: string) => {
      const plan = plans[type];
      return plan?.kind === 'fields' ? plan.fields.map((f) => [f.name, f.kind, f.required]) : [];
    };
    expect(kinds('sleep')).toEqual([['ms', 'number', true]]);
    expect(kinds('file.checksum')).toEqual([['fileId', 'file', true], ['algorithm', 'enum', false]]);
    expect(kinds('csv.summary')).toEqual([['fileId', 'file', true], ['delimiter', 'text', false], ['header', 'boolean', false]]);
    // `payload` is any JSON value (a recursive $ref): a raw JSON field.
    expect(kinds('echo')).toEqual([['payload', 'json', false]]);
  });

  it('turns typed values into the input, with defaults, and omits optional fields left empty', () => {
    const fields = fieldsOf(describeJobTypes().find((type) => type.type === 'csv.summary')?.inputSchema);
    const values = initialValues(fields);
    expect(values).toEqual({ fileId: '', delimiter: ',', header: true });
    expect(buildInput(fields, values)).toEqual({ ok: false, errors: [{ field: 'fileId', message: 'choose a file' }] });
    const fileId = '0b0ad3c1-5a1e-4c57-9c1b-0c3c0a4f5e6d';
    expect(buildInput(fields, { ...values, fileId, delimiter: ';', header: false })).toEqual({ ok: true, input: { fileId, delimiter: ';', header: false } });
    expect(buildInput(fields, { ...values, fileId, delimiter: '' })).toEqual({ ok: true, input: { fileId, header: true } });
  });

  it('checks numbers: integers, bounds, and text that is not a number', () => {
    const fields = fieldsOf({ type: 'object', properties: { ms: { type: 'integer', minimum: 0, maximum: 10 }, ratio: { type: 'number' } }, required: ['ms'] });
    expect(buildInput(fields, { ms: '5', ratio: '0.25' })).toEqual({ ok: true, input: { ms: 5, ratio: 0.25 } });
    expect(buildInput(fields, { ms: '1.5', ratio: 'x' })).toEqual({
      ok: false,
      errors: [
        { field: 'ms', message: 'must be a whole number' },
        { field: 'ratio', message: 'must be a number' },
      ],
    });
    expect(buildInput(fields, { ms: '11', ratio: '' })).toEqual({ ok: false, errors: [{ field: 'ms', message: 'must be at most 10' }] });
    expect(buildInput(fields, { ms: '', ratio: '' })).toEqual({ ok: false, errors: [{ field: 'ms', message: 'is required' }] });
  });

  it('keeps enum values typed, and offers an optional flag without a default as a choice of three', () => {
    const fields = fieldsOf({ type: 'object', properties: { level: { enum: [1, 2, '3'] }, verbose: { type: 'boolean' } } });
    expect(fields.map((f) => f.kind)).toEqual(['enum', 'enum']);
    expect(initialValues(fields)).toEqual({ level: '', verbose: '' });
    expect(buildInput(fields, { level: encodeOption(2), verbose: encodeOption(false) })).toEqual({ ok: true, input: { level: 2, verbose: false } });
    expect(buildInput(fields, { level: encodeOption('3'), verbose: '' })).toEqual({ ok: true, input: { level: '3' } });
    expect(buildInput(fields, { level: '"4"', verbose: '' })).toEqual({ ok: false, errors: [{ field: 'level', message: 'is not one of the choices' }] });
  });

  it('offers a file picker for the fields the contract declares with FileId, not for other UUIDs or file-like names', () => {
    const uuid = { type: 'string', format: 'uuid' };
    const fields = fieldsOf({ type: 'object', properties: { fileId: uuid, source: { ...uuid, 'x-file-id': true }, files: { type: 'array', items: uuid } } });
    expect(fields.map((f) => [f.name, f.kind])).toEqual([['fileId', 'text'], ['source', 'file'], ['files', 'list']]);
  });

  it('reads arrays of simple values one per line, and arrays of file ids as a multi-file picker', () => {
    const uuid = { type: 'string', format: 'uuid', 'x-file-id': true };
    const fields = fieldsOf({
      type: 'object',
      properties: { tags: { type: 'array', items: { type: 'string' } }, sizes: { type: 'array', items: { type: 'integer' }, default: [1, 2] }, fileIds: { type: 'array', items: uuid } },
      required: ['fileIds'],
    });
    expect(fields.map((f) => [f.name, f.kind])).toEqual([['tags', 'list'], ['sizes', 'list'], ['fileIds', 'file']]);
    expect(fields[2]).toMatchObject({ multiple: true });
    const values = initialValues(fields);
    expect(values.sizes).toBe('1\n2');
    expect(buildInput(fields, { ...values, tags: ' a \n\n b ', fileIds: 'x\ny' })).toEqual({ ok: true, input: { tags: ['a', 'b'], sizes: [1, 2], fileIds: ['x', 'y'] } });
    expect(buildInput(fields, { ...values, sizes: '1\ntwo', fileIds: '' })).toEqual({
      ok: false,
      errors: [
        { field: 'sizes', message: 'line 2 must be a number' },
        { field: 'fileIds', message: 'choose at least one file' },
      ],
    });
  });

  it('falls back to a raw JSON field for what it cannot render, and to a raw editor for inputs that are not objects', () => {
    const fields = fieldsOf({ type: 'object', properties: { nested: { type: 'object', properties: { a: { type: 'string' } } }, either: { anyOf: [{ type: 'string' }, { type: 'number' }] } } });
    expect(fields.map((f) => f.kind)).toEqual(['json', 'json']);
    expect(buildInput(fields, { nested: '{"a":"x"}', either: '3' })).toEqual({ ok: true, input: { nested: { a: 'x' }, either: 3 } });
    expect(buildInput(fields, { nested: '{a}', either: '' })).toEqual({ ok: false, errors: [{ field: 'nested', message: 'is not valid JSON' }] });
    expect(planForm({ type: 'array', items: { type: 'string' } })).toEqual({ kind: 'json', reason: 'the input is not an object of named fields' });
    expect(planForm(null).kind).toBe('json');
    expect(parseRawInput('{"payload": [1]}')).toEqual({ ok: true, input: { payload: [1] } });
    expect(parseRawInput('[1]')).toEqual({ ok: false, errors: [{ field: 'input', message: 'must be a JSON object' }] });
  });

  it('follows local $refs to simple definitions', () => {
    const fields = fieldsOf({ type: 'object', properties: { mode: { $ref: '#/$defs/Mode', description: 'How.' } }, $defs: { Mode: { type: 'string', enum: ['fast', 'slow'], default: 'fast' } } });
    expect(fields).toEqual([{ name: 'mode', required: false, description: 'How.', kind: 'enum', options: ['fast', 'slow'], defaultValue: 'fast' }]);
  });
});
