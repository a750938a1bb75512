import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { CONSOLE_PAGES } from '../../../contract/http';
import { apiJson, asProblem, ApiProblem } from '../api';
import { PageTitle, ProblemAlert } from '../components';
import { navigate } from '../router';
import { SchemaForm } from '../SchemaForm';
import { buildInput, initialValues, parseRawInput, planForm, type FieldError, type FormValues } from '../schema-form';
import type { Job, JobType } from '../types';
import { useUploads } from '../uploads';

/** Submit any job type, with a form generated from its input schema (or the input as raw JSON). */
export function SubmitPage({ initialType, initialFileId }: { initialType: string | null; initialFileId: string | null }) {
  const [types, setTypes] = useState<JobType[]>();
  const [typeName, setTypeName] = useState(initialType ?? '');
  const [values, setValues] = useState<FormValues>({});
  const [raw, setRaw] = useState(false);
  const [rawText, setRawText] = useState('{}');
  const [maxAttempts, setMaxAttempts] = useState('');
  const [priority, setPriority] = useState('');
  const [errors, setErrors] = useState<FieldError[]>([]);
  const [problem, setProblem] = useState<ApiProblem>();
  const [busy, setBusy] = useState(false);
  const uploads = useUploads();

  useEffect(() => {
    apiJson<{ items: JobType[] }>('/v1/job-types').then(
      (list) => {
        setTypes(list.items);
        setTypeName((current) => (list.items.some((t) => t.type === current) ? current : (list.items[0]?.type ?? '')));
      },
      (error: unknown) => setProblem(asProblem(error)),
    );
  }, []);

  const jobType = types?.find((candidate) => candidate.type === typeName);
  const plan = useMemo(() => (jobType ? planForm(jobType.inputSchema) : undefined), [jobType]);
  const fields = plan?.kind === 'fields' ? plan.fields : [];
  const rawOnly = plan?.kind === 'json';

  useEffect(() => {
    if (!plan) return;
    const start = plan.kind === 'fields' ? initialValues(plan.fields) : {};
    if (initialFileId && plan.kind === 'fields') {
      const fileField = plan.fields.find((field) => field.kind === 'file');
      if (fileField) start[fileField.name] = initialFileId;
    }
    setValues(start);
    setErrors([]);
    setRawText('{}');
  }, [plan, initialFileId]);

  const toggleRaw = () => {
    if (!raw) {
      const built = buildInput(fields, values);
      setRawText(JSON.stringify(built.ok ? built.input : {}, null, 2));
    }
    setRaw(!raw);
    setErrors([]);
  };

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    setProblem(undefined);
    const built = raw || rawOnly ? parseRawInput(rawText) : buildInput(fields, values);
    if (!built.ok) {
      setErrors(built.errors);
      setProblem(new ApiProblem(0, 'The input is not complete', 'Correct the fields marked below.', built.errors));
      return;
    }
    setErrors([]);
    const body: Record<string, unknown> = { type: typeName, input: built.input };
    if (maxAttempts.trim()) body.maxAttempts = Number(maxAttempts);
    if (priority.trim()) body.priority = Number(priority);
    setBusy(true);
    try {
      const job = await apiJson<Job>('/v1/jobs', { json: body });
      navigate(`${CONSOLE_PAGES.job}/${job.id}`);
    } catch (error) {
      const failure = asProblem(error);
      setProblem(failure);
      setErrors(failure.errors.map((e) => ({ field: e.field.replace(/^body\.input\./, ''), message: e.message })));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="narrow">
      <PageTitle>Submit a job</PageTitle>
      <ProblemAlert problem={problem} />
      {types === undefined ? (
        <p>Loading job types…</p>
      ) : (
        <form onSubmit={onSubmit} className="stack" noValidate>
          <label htmlFor="job-type">Job type</label>
          <select id="job-type" value={typeName} onChange={(e) => setTypeName(e.target.value)} aria-describedby="job-type-description">
            {types.map((candidate) => (
              <option key={candidate.type} value={candidate.type}>
                {candidate.type}
              </option>
            ))}
          </select>
          <p id="job-type-description" className="hint">
            {jobType?.description}
          </p>
          <fieldset>
            <legend>Input</legend>
            {rawOnly ? <p className="hint">This input is edited as JSON: {plan.reason}.</p> : null}
            {raw || rawOnly ? (
              <>
                <label htmlFor="raw-input">Input as JSON</label>
                <textarea id="raw-input" className="code" rows={10} spellCheck={false} value={rawText} onChange={(e) => setRawText(e.target.value)} />
              </>
            ) : (
              <SchemaForm fields={fields} values={values} errors={errors} uploads={uploads} onChange={(name, value) => setValues((current) => ({ ...current, [name]: value }))} />
            )}
            {rawOnly ? null : (
              <button type="button" className="secondary" onClick={toggleRaw}>
                {raw ? 'Edit with the form' : 'Edit as JSON'}
              </button>
            )}
          </fieldset>
          <details>
            <summary>Options</summary>
            <div className="stack">
              <label htmlFor="max-attempts">Max attempts (optional)</label>
              <input id="max-attempts" type="number" min={1} max={25} step={1} value={maxAttempts} onChange={(e) => setMaxAttempts(e.target.value)} />
              <label htmlFor="priority">Priority, 0 is the most urgent (optional)</label>
              <input id="priority" type="number" min={0} max={1000} step={1} value={priority} onChange={(e) => setPriority(e.target.value)} />
            </div>
          </details>
          <button type="submit" disabled={busy || !jobType}>
            Submit job
          </button>
        </form>
      )}
    </section>
  );
}
