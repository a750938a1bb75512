import { useCallback, useEffect, useRef, useState } from 'react';
import { CONSOLE_PAGES } from '../../../contract/http';
import { apiJson, asProblem, type ApiProblem } from '../api';
import { formatTime, PageTitle, ProblemAlert, ProgressBar, StatusBadge, shortId } from '../components';
import { followEventStream } from '../event-stream';
import { Link } from '../router';
import { JOB_STATUSES, parseJobEvent, type Job, type Page } from '../types';

const PAGE_SIZE = 20;
/** Events arrive in bursts (a fan-out's children); one re-read of the list answers a burst. */
const REFRESH_COALESCE_MS = 250;

type LiveState = { kind: 'connecting' } | { kind: 'live' } | { kind: 'retrying'; problem: ApiProblem } | { kind: 'unavailable'; problem: ApiProblem };

/** The caller's jobs, newest first, kept current by one event stream (GET /v1/jobs/events). */
export function JobsPage() {
  const [status, setStatus] = useState('');
  const [jobs, setJobs] = useState<Job[]>();
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [problem, setProblem] = useState<ApiProblem>();
  const [live, setLive] = useState<LiveState>({ kind: 'connecting' });
  const shown = useRef(PAGE_SIZE);

  const load = useCallback(async () => {
    const query = new URLSearchParams({ limit: String(Math.min(100, Math.max(PAGE_SIZE, shown.current))) });
    if (status) query.set('status', status);
    try {
      const page = await apiJson<Page<Job>>(`/v1/jobs?${query.toString()}`);
      setJobs(page.items);
      setNextCursor(page.nextCursor);
      setProblem(undefined);
    } catch (error) {
      setProblem(asProblem(error));
    }
  }, [status]);

  useEffect(() => {
    shown.current = PAGE_SIZE;
    void load();
  }, [load]);

  useEffect(() => {
    const stop = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const refreshSoon = () => {
      timer ??= setTimeout(() => {
        timer = undefined;
        void load();
      }, REFRESH_COALESCE_MS);
    };
    void followEventStream(
      '/v1/jobs/events',
      {
        onOpen: () => {
          setLive({ kind: 'live' });
          // Whatever happened while disconnected is in the list once re-read.
          refreshSoon();
        },
        onMessage: (message) => {
          const event = parseJobEvent(message.data);
          if (!event) return;
          setJobs((current) => current?.map((job) => (job.id === event.jobId ? { ...job, status: event.to } : job)));
          refreshSoon();
        },
        onError: (streamProblem, final) => setLive(final ? { kind: 'unavailable', problem: streamProblem } : { kind: 'retrying', problem: streamProblem }),
      },
      stop.signal,
    );
    return () => {
      stop.abort();
      if (timer) clearTimeout(timer);
    };
  }, [load]);

  const loadMore = async () => {
    if (!nextCursor) return;
    const query = new URLSearchParams({ limit: String(PAGE_SIZE), cursor: nextCursor });
    if (status) query.set('status', status);
    try {
      const page = await apiJson<Page<Job>>(`/v1/jobs?${query.toString()}`);
      setJobs((current) => [...(current ?? []), ...page.items]);
      shown.current += page.items.length;
      setNextCursor(page.nextCursor);
    } catch (error) {
      setProblem(asProblem(error));
    }
  };

  return (
    <section>
      <PageTitle>Jobs</PageTitle>
      <div className="toolbar">
        <label htmlFor="status-filter">Status</label>
        <select id="status-filter" value={status} onChange={(e) => setStatus(e.target.value)}>
          <option value="">any</option>
          {JOB_STATUSES.map((value) => (
            <option key={value} value={value}>
              {value}
            </option>
          ))}
        </select>
        <Link to={CONSOLE_PAGES.submit} className="button">
          Submit a job
        </Link>
        <LiveIndicator state={live} onRefresh={() => void load()} />
      </div>
      <ProblemAlert problem={problem} />
      {jobs === undefined ? (
        <p>Loading…</p>
      ) : jobs.length === 0 ? (
        <p>No jobs yet.</p>
      ) : (
        <div className="table-wrap">
          <table className="jobs">
            <caption className="visually-hidden">Your jobs, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Status</th>
                <th scope="col">Progress</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {jobs.map((job) => (
                <tr key={job.id} data-job-id={job.id}>
                  <td>
                    <Link to={`${CONSOLE_PAGES.job}/${job.id}`}>{job.type}</Link> <code className="id">{shortId(job.id)}</code>
                  </td>
                  <td>
                    <StatusBadge status={job.status} />
                  </td>
                  <td>
                    <ProgressBar value={job.progress} label={`Progress of ${job.type} ${shortId(job.id)}`} />
                  </td>
                  <td>{formatTime(job.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {nextCursor ? (
        <button type="button" onClick={() => void loadMore()}>
          Show more
        </button>
      ) : null}
    </section>
  );
}

function LiveIndicator({ state, onRefresh }: { state: LiveState; onRefresh: () => void }) {
  return (
    <p className="live" role="status">
      {state.kind === 'live' ? 'Live' : null}
      {state.kind === 'connecting' ? 'Connecting…' : null}
      {state.kind === 'retrying' ? `Reconnecting (${state.problem.title})` : null}
      {state.kind === 'unavailable' ? (
        <>
          Live updates unavailable: {state.problem.title}.{' '}
          <button type="button" onClick={onRefresh}>
            Refresh
          </button>
        </>
      ) : null}
    </p>
  );
}
