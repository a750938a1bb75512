import { useCallback, useEffect, useState } from 'react';
import { CONSOLE_PAGES } from '../../../contract/http';
import { apiJson, asProblem, type ApiProblem } from '../api';
import { formatTime, PageTitle, ProblemAlert, StatusBadge, shortId } from '../components';
import { Link } from '../router';
import type { Job, Page, QueueStats } from '../types';

/** For admins: queue counts, pause and resume, and the dead-letter set with replay. */
export function AdminPage() {
  const [stats, setStats] = useState<QueueStats>();
  const [dead, setDead] = useState<Page<Job>>();
  const [problem, setProblem] = useState<ApiProblem>();
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    try {
      const [queue, letters] = await Promise.all([apiJson<QueueStats>('/v1/admin/queues'), apiJson<Page<Job>>('/v1/admin/dlq?limit=50')]);
      setStats(queue);
      setDead(letters);
    } catch (error) {
      setProblem(asProblem(error));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  const run = async (what: string, path: string) => {
    setBusy(true);
    setProblem(undefined);
    setMessage('');
    try {
      await apiJson(path, { method: 'POST' });
      setMessage(what);
      await load();
    } catch (error) {
      setProblem(asProblem(error));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section>
      <PageTitle>Operations</PageTitle>
      <ProblemAlert problem={problem} />
      <p role="status">{message}</p>
      <div className="toolbar">
        <button type="button" onClick={() => void load()} className="secondary">
          Refresh
        </button>
      </div>
      {stats ? (
        <>
          <h2>Queue {stats.queue}</h2>
          <p>
            The queue is <strong>{stats.paused ? 'paused' : 'running'}</strong>. Relay lag {stats.relayLagSeconds.toFixed(1)} s.{' '}
            {stats.paused ? (
              <button type="button" disabled={busy} onClick={() => void run('Queue resumed.', '/v1/admin/queues/resume')}>
                Resume queue
              </button>
            ) : (
              <button type="button" disabled={busy} onClick={() => void run('Queue paused.', '/v1/admin/queues/pause')}>
                Pause queue
              </button>
            )}
          </p>
          <div className="columns">
            <CountTable caption="Queue entries per state" counts={stats.counts} />
            <CountTable caption="Jobs per status" counts={stats.statuses} />
          </div>
        </>
      ) : null}
      <h2>Dead letters</h2>
      {dead === undefined ? null : dead.items.length === 0 ? (
        <p>No dead-lettered jobs.</p>
      ) : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Dead-lettered jobs, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Status</th>
                <th scope="col">Error</th>
                <th scope="col">Finished</th>
                <th scope="col">Action</th>
              </tr>
            </thead>
            <tbody>
              {dead.items.map((job) => (
                <tr key={job.id}>
                  <td>
                    <Link to={`${CONSOLE_PAGES.job}/${job.id}`}>{job.type}</Link> <code className="id">{shortId(job.id)}</code>
                  </td>
                  <td>
                    <StatusBadge status={job.status} />
                  </td>
                  <td>{job.error}</td>
                  <td>{formatTime(job.finishedAt)}</td>
                  <td>
                    <button type="button" disabled={busy} onClick={() => void run(`Job ${shortId(job.id)} replayed.`, `/v1/admin/dlq/${job.id}/replay`)}>
                      Replay <span className="visually-hidden">{job.type} {shortId(job.id)}</span>
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function CountTable({ caption, counts }: { caption: string; counts: Record<string, number> }) {
  return (
    <table className="counts-table">
      <caption>{caption}</caption>
      <tbody>
        {Object.entries(counts).map(([name, count]) => (
          <tr key={name}>
            <th scope="row">{name}</th>
            <td>{count}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
