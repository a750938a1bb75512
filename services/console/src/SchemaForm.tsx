import { shortId } from './components';
import type { Field, FieldError, FormValues } from './schema-form';
import { encodeOption, splitLines } from './schema-form';
import type { StoredFile } from './types';

interface SchemaFormProps {
  fields: readonly Field[];
  values: FormValues;
  errors: readonly FieldError[];
  uploads: readonly StoredFile[];
  onChange(name: string, value: string | boolean): void;
}

const controlId = (name: string) => `input-${name}`;

/** The controls of a planned form (schema-form.ts), each with its label, hint and error. */
export function SchemaForm({ fields, values, errors, uploads, onChange }: SchemaFormProps) {
  if (fields.length === 0) return <p>This job type takes no input.</p>;
  return (
    <>
      {fields.map((field) => {
        const error = errors.find((candidate) => candidate.field === field.name);
        const hintId = field.description ? `${controlId(field.name)}-hint` : undefined;
        const errorId = error ? `${controlId(field.name)}-error` : undefined;
        const describedBy = [hintId, errorId].filter(Boolean).join(' ') || undefined;
        return (
          <div className="field" key={field.name}>
            {field.kind === 'boolean' ? (
              <div className="checkbox">
                <input
                  id={controlId(field.name)}
                  type="checkbox"
                  checked={values[field.name] === true}
                  aria-describedby={describedBy}
                  onChange={(e) => onChange(field.name, e.target.checked)}
                />
                <label htmlFor={controlId(field.name)}>{field.name}</label>
              </div>
            ) : (
              <>
                <label htmlFor={controlId(field.name)}>
                  {field.name}
                  {field.required ? <span aria-hidden="true"> *</span> : <span className="optional"> (optional)</span>}
                </label>
                <Control field={field} value={values[field.name]} uploads={uploads} describedBy={describedBy} invalid={Boolean(error)} onChange={onChange} />
              </>
            )}
            {field.description ? (
              <p id={hintId} className="hint">
                {field.description}
              </p>
            ) : null}
            {error ? (
              <p id={errorId} className="field-error">
                {field.name} {error.message}
              </p>
            ) : null}
          </div>
        );
      })}
    </>
  );
}

interface ControlProps {
  field: Field;
  value: string | boolean | undefined;
  uploads: readonly StoredFile[];
  describedBy: string | undefined;
  invalid: boolean;
  onChange(name: string, value: string | boolean): void;
}

function Control({ field, value, uploads, describedBy, invalid, onChange }: ControlProps) {
  const text = typeof value === 'string' ? value : '';
  const common = { id: controlId(field.name), 'aria-describedby': describedBy, 'aria-invalid': invalid || undefined, required: field.required };
  const set = (next: string) => onChange(field.name, next);
  switch (field.kind) {
    case 'enum':
      return (
        <select {...common} value={text} onChange={(e) => set(e.target.value)}>
          {field.required && field.defaultValue !== undefined ? null : <option value="">—</option>}
          {field.options.map((option) => (
            <option key={encodeOption(option)} value={encodeOption(option)}>
              {String(option)}
            </option>
          ))}
        </select>
      );
    case 'number':
      return (
        <input
          {...common}
          type="number"
          inputMode={field.integer ? 'numeric' : 'decimal'}
          step={field.integer ? 1 : 'any'}
          min={field.minimum}
          max={field.maximum}
          value={text}
          onChange={(e) => set(e.target.value)}
        />
      );
    case 'text':
      return <input {...common} type="text" minLength={field.minLength} maxLength={field.maxLength} value={text} onChange={(e) => set(e.target.value)} />;
    case 'list':
      return <textarea {...common} rows={4} placeholder="one value per line" value={text} onChange={(e) => set(e.target.value)} />;
    case 'json':
      return <textarea {...common} rows={5} className="code" spellCheck={false} placeholder="JSON" value={text} onChange={(e) => set(e.target.value)} />;
    case 'file':
      return field.multiple ? <MultiFilePicker {...{ field, text, uploads, common, set }} /> : <FilePicker {...{ field, text, uploads, common, set }} />;
    default:
      return null;
  }
}

interface PickerProps {
  field: Field;
  text: string;
  uploads: readonly StoredFile[];
  common: { id: string; 'aria-describedby': string | undefined; required: boolean };
  set(next: string): void;
}

/** One file: a choice among the console's uploads, or any file id typed in. */
function FilePicker({ field, text, uploads, common, set }: PickerProps) {
  const chosen = uploads.some((file) => file.id === text) ? text : '';
  return (
    <div className="picker">
      {uploads.length > 0 ? (
        <select aria-label={`${field.name}: choose one of your uploads`} value={chosen} onChange={(e) => set(e.target.value)}>
          <option value="">Choose an upload…</option>
          {uploads.map((file) => (
            <option key={file.id} value={file.id}>
              {file.name} ({shortId(file.id)})
            </option>
          ))}
        </select>
      ) : null}
      <input {...common} type="text" placeholder="file id" spellCheck={false} value={text} onChange={(e) => set(e.target.value.trim())} />
    </div>
  );
}

/** Several files: tick uploads, or type ids, one per line. */
function MultiFilePicker({ field, text, uploads, common, set }: PickerProps) {
  const ids = splitLines(text);
  const toggle = (id: string, on: boolean) => set((on ? [...ids.filter((known) => known !== id), id] : ids.filter((known) => known !== id)).join('\n'));
  return (
    <div className="picker">
      {uploads.length > 0 ? (
        <fieldset>
          <legend>{field.name}: your uploads</legend>
          {uploads.map((file) => (
            <div className="checkbox" key={file.id}>
              <input id={`${common.id}-${file.id}`} type="checkbox" checked={ids.includes(file.id)} onChange={(e) => toggle(file.id, e.target.checked)} />
              <label htmlFor={`${common.id}-${file.id}`}>{file.name}</label>
            </div>
          ))}
        </fieldset>
      ) : null}
      <textarea {...common} rows={3} placeholder="file ids, one per line" spellCheck={false} value={text} onChange={(e) => set(e.target.value)} />
    </div>
  );
}
