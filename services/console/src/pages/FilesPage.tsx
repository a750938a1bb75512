import { useState, type FormEvent } from 'react';
import { CONSOLE_PAGES } from '../../../contract/http';
import { asProblem, type ApiProblem } from '../api';
import { formatBytes, PageTitle, ProblemAlert } from '../components';
import { Link } from '../router';
import { downloadFile, uploadFile, useUploads } from '../uploads';

/** Upload files and use them in jobs. */
export function FilesPage() {
  const uploads = useUploads();
  const [chosen, setChosen] = useState<File>();
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<ApiProblem>();
  const [message, setMessage] = useState('');

  const onSubmit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (!chosen) return;
    setBusy(true);
    setProblem(undefined);
    setMessage('');
    try {
      const stored = await uploadFile(chosen);
      setMessage(`Uploaded ${stored.name} (${formatBytes(stored.size)}).`);
      event.currentTarget?.reset();
      setChosen(undefined);
    } catch (error) {
      setProblem(asProblem(error));
    } finally {
      setBusy(false);
    }
  };

  const download = async (id: string) => {
    setProblem(undefined);
    try {
      await downloadFile(id);
    } catch (error) {
      setProblem(asProblem(error));
    }
  };

  return (
    <section>
      <PageTitle>Files</PageTitle>
      <ProblemAlert problem={problem} />
      <form onSubmit={onSubmit} className="stack narrow">
        <label htmlFor="upload">File to upload</label>
        <input id="upload" type="file" onChange={(e) => setChosen(e.target.files?.[0])} />
        <button type="submit" disabled={busy || !chosen}>
          Upload
        </button>
      </form>
      <p role="status">{message}</p>
      <h2>Uploaded in this session</h2>
      {uploads.length === 0 ? (
        <p>Nothing uploaded yet.</p>
      ) : (
        <ul className="files">
          {uploads.map((file) => (
            <li key={file.id} data-file-id={file.id}>
              <strong>{file.name}</strong> <span>{formatBytes(file.size)}</span> <code className="id">{file.id}</code>
              <span className="actions">
                <Link to={`${CONSOLE_PAGES.submit}?fileId=${file.id}`}>Use in a job</Link>
                <button type="button" className="secondary" onClick={() => void download(file.id)}>
                  Download {file.name}
                </button>
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
