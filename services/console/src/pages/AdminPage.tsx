import { useCallback, useEffect, useRef, useState } from 'react';
import { apiJson, asProblem, type ApiProblem } from '../api';
import { formatTime, PageTitle, ProblemAlert, StatusBadge, shortId } from '../components';
import type { Job, Page, QueueStats } from '../types';

/**
 * For admins: queue counts, pause and resume, and the dead-letter set with replay. The dead
 * letters are anyone's jobs, and the job pages show only the viewer's own: a row names its
 * job by its whole id, which `platform jobs show` takes.
 */
export function AdminPage() {
  const [stats, setStats] = useState<QueueStats>();
  const [dead, setDead] = useState<Page<Job>>();
  const [problem, setProblem] = useState<ApiProblem>();
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);
  const deadLettersHeading = useRef<HTMLHeadingElement>(null);
  const actionEnded = useRef(false);

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

  // Once an action's outcome is on screen: a replayed row has left the table with the button that
  // had focus, and focus fell to the page's start; carry on from the dead letters' heading instead.
  useEffect(() => {
    if (!actionEnded.current) return;
    actionEnded.current = false;
    if (document.activeElement === document.body) deadLettersHeading.current?.focus();
  });

  const refresh = () => {
    setProblem(undefined);
    setMessage('');
    void load();
  };

  const run = async (what: string, path: string) => {
    if (busy) return;
    setBusy(true);
    setProblem(undefined);
    setMessage('');
    try {
      await apiJson(path, { method: 'POST' });
      setMessage(what);
    } catch (error) {
      setProblem(asProblem(error));
    }
    // Either way the page shows what is true now: another tab or operator may have acted meanwhile.
    await load();
    actionEnded.current = true;
    setBusy(false);
  };

  return (
    <section>
      <PageTitle>Operations</PageTitle>
      <ProblemAlert problem={problem} />
      <p role="status">{message}</p>
      <div className="toolbar">
        <button type="button" onClick={refresh} className="secondary">
          Refresh
        </button>
      </div>
      {stats ? (
        <>
          <h2>Queue {stats.queue}</h2>
          <p>
            The queue is <strong>{stats.paused ? 'paused' : 'running'}</strong>. Relay lag {stats.relayLagSeconds.toFixed(1)} s.{' '}
            {/* aria-disabled, not disabled, while busy: a disabled button drops keyboard focus to the page's start. */}
            {stats.paused ? (
              <button type="button" aria-disabled={busy} onClick={() => void run('Queue resumed.', '/v1/admin/queues/resume')}>
                Resume queue
              </button>
            ) : (
              <button type="button" aria-disabled={busy} onClick={() => void run('Queue paused.', '/v1/admin/queues/pause')}>
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
      <h2 ref={deadLettersHeading} tabIndex={-1}>
        Dead letters
      </h2>
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
                    {job.type} <code className="id">{job.id}</code>
                  </td>
                  <td>
                    <StatusBadge status={job.status} />
                  </td>
                  <td>{job.error}</td>
                  <td>{formatTime(job.finishedAt)}</td>
                  <td>
                    <button type="button" aria-disabled={busy} onClick={() => void run(`Job ${shortId(job.id)} replayed.`, `/v1/admin/dlq/${job.id}/replay`)}>
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
