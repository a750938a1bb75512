import { useCallback, useEffect, useState } from 'react';
import { CONSOLE_PAGES } from '../../../contract/http';
import { apiJson, asProblem, type ApiProblem } from '../api';
import { formatTime, JsonBlock, PageTitle, ProblemAlert, ProgressBar, StatusBadge, shortId } from '../components';
import { followEventStream } from '../event-stream';
import { Link } from '../router';
import { isTerminal, parseJobEvent, TASK_STATUSES, type Job, type JobEventData, type TaskPage } from '../types';
import { downloadFile } from '../uploads';

const REFRESH_COALESCE_MS = 250;
const TASK_PAGE_SIZE = 50;

interface ShownEvent extends JobEventData {
  id: string;
}

/** One job: state, progress, result, its fan-out tasks and its events, live until it ends. */
export function JobPage({ jobId }: { jobId: string }) {
  const [job, setJob] = useState<Job>();
  const [tasks, setTasks] = useState<TaskPage>();
  const [taskStatus, setTaskStatus] = useState('');
  const [events, setEvents] = useState<ShownEvent[]>([]);
  const [taskEvents, setTaskEvents] = useState(0);
  const [problem, setProblem] = useState<ApiProblem>();
  const [notFound, setNotFound] = useState(false);
  const [streamRound, setStreamRound] = useState(0);
  const [busy, setBusy] = useState(false);

  const loadJob = useCallback(async () => {
    try {
      setJob(await apiJson<Job>(`/v1/jobs/${jobId}`));
    } catch (error) {
      const failure = asProblem(error);
      if (failure.status === 404) setNotFound(true);
      setProblem(failure);
    }
  }, [jobId]);

  const fansOut = Boolean(job?.tasks);
  const loadTasks = useCallback(async () => {
    if (!fansOut) return;
    const query = new URLSearchParams({ limit: String(TASK_PAGE_SIZE) });
    if (taskStatus) query.set('status', taskStatus);
    try {
      setTasks(await apiJson<TaskPage>(`/v1/jobs/${jobId}/tasks?${query.toString()}`));
    } catch (error) {
      setProblem(asProblem(error));
    }
  }, [jobId, taskStatus, fansOut]);

  useEffect(() => {
    setJob(undefined);
    setEvents([]);
    setTaskEvents(0);
    setNotFound(false);
    setProblem(undefined);
    void loadJob();
  }, [loadJob]);

  useEffect(() => {
    void loadTasks();
  }, [loadTasks]);

  useEffect(() => {
    if (notFound) return undefined;
    const stop = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const refreshSoon = () => {
      timer ??= setTimeout(() => {
        timer = undefined;
        void loadJob();
        void loadTasks();
      }, REFRESH_COALESCE_MS);
    };
    void followEventStream(
      `/v1/jobs/${jobId}/events`,
      {
        onMessage: (message) => {
          const event = parseJobEvent(message.data);
          if (!event) return;
          const id = message.lastEventId || `${event.jobId}:${event.at}:${event.to}`;
          // A fan-out job's stream carries its tasks' events too: those show in the tasks panel, counted here.
          if (event.jobId === jobId) {
            setEvents((current) => (current.some((known) => known.id === id) ? current : [...current, { ...event, id }]));
            setJob((current) => (current ? { ...current, status: event.to } : current));
          } else setTaskEvents((count) => count + 1);
          refreshSoon();
          // The stream ends after a terminal state; following it further would only replay it.
          if (event.jobId === jobId && isTerminal(event.to)) stop.abort();
        },
        onError: (streamProblem, final) => {
          if (final) setProblem(streamProblem);
        },
      },
      stop.signal,
    );
    return () => {
      stop.abort();
      if (timer) clearTimeout(timer);
    };
  }, [jobId, notFound, streamRound, loadJob, loadTasks]);

  const act = async (action: 'cancel' | 'retry') => {
    setBusy(true);
    setProblem(undefined);
    try {
      setJob(await apiJson<Job>(`/v1/jobs/${jobId}/${action}`, { method: 'POST' }));
      if (action === 'retry') setStreamRound((round) => round + 1);
      void loadTasks();
    } catch (error) {
      setProblem(asProblem(error));
    } finally {
      setBusy(false);
    }
  };

  const download = async (fileId: string) => {
    setProblem(undefined);
    try {
      await downloadFile(fileId);
    } catch (error) {
      setProblem(asProblem(error));
    }
  };

  if (notFound) {
    return (
      <section>
        <PageTitle>Job not found</PageTitle>
        <ProblemAlert problem={problem} />
        <p>
          <Link to={CONSOLE_PAGES.jobs}>Back to your jobs</Link>
        </p>
      </section>
    );
  }

  return (
    <section>
      <PageTitle>{job ? `Job ${job.type}` : 'Job'}</PageTitle>
      <p className="id">
        <code>{jobId}</code>
      </p>
      <ProblemAlert problem={problem} />
      {job ? (
        <>
          <div className="toolbar">
            <StatusBadge status={job.status} />
            <ProgressBar value={job.progress} label="Progress" />
            {!isTerminal(job.status) ? (
              <button type="button" onClick={() => void act('cancel')} disabled={busy}>
                Cancel job
              </button>
            ) : null}
            {job.status === 'failed' || job.status === 'cancelled' ? (
              <button type="button" onClick={() => void act('retry')} disabled={busy}>
                Retry job
              </button>
            ) : null}
          </div>
          <dl className="details">
            {job.parentId ? (
              <>
                <dt>Task of</dt>
                <dd>
                  <Link to={`${CONSOLE_PAGES.job}/${job.parentId}`}>the fan-out job {shortId(job.parentId)}</Link>
                </dd>
              </>
            ) : null}
            <dt>Attempts</dt>
            <dd>
              {job.attempts} of {job.maxAttempts}
            </dd>
            <dt>Created</dt>
            <dd>{formatTime(job.createdAt)}</dd>
            <dt>Started</dt>
            <dd>{formatTime(job.startedAt)}</dd>
            <dt>Finished</dt>
            <dd>{formatTime(job.finishedAt)}</dd>
            {job.error ? (
              <>
                <dt>Error</dt>
                <dd className="error-text">{job.error}</dd>
              </>
            ) : null}
          </dl>
          {job.result !== null && job.result !== undefined ? (
            <>
              <h2>Result</h2>
              <JsonBlock value={job.result} label="Result" />
            </>
          ) : null}
          {job.resultFileId ? (
            <button type="button" onClick={() => void download(job.resultFileId as string)}>
              Download result file
            </button>
          ) : null}
          {job.input !== undefined ? (
            <details>
              <summary>Input</summary>
              <JsonBlock value={job.input} label="Input" />
            </details>
          ) : null}
        </>
      ) : (
        <p>Loading…</p>
      )}
      {fansOut && tasks ? <TasksPanel tasks={tasks} status={taskStatus} onStatus={setTaskStatus} /> : null}
      <h2>Events</h2>
      {taskEvents > 0 ? <p className="hint">and {taskEvents} events of its tasks</p> : null}
      {events.length === 0 ? (
        <p>No events yet.</p>
      ) : (
        <ol className="events" aria-live="polite">
          {events.map((event) => (
            <li key={event.id}>
              <time dateTime={event.at}>{formatTime(event.at)}</time> {event.from ?? 'new'} →{' '}
              <StatusBadge status={event.to} />
              {event.detail ? <span className="detail"> {event.detail}</span> : null}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

function TasksPanel({ tasks, status, onStatus }: { tasks: TaskPage; status: string; onStatus: (status: string) => void }) {
  const { counts } = tasks;
  const policy = counts.failurePolicy.mode === 'tolerate' ? `tolerates up to ${counts.failurePolicy.maxFailed ?? 0} failed tasks` : 'fails at the first failed task';
  return (
    <section aria-labelledby="tasks-title" className="tasks">
      <h2 id="tasks-title">Tasks</h2>
      <ul className="counts" aria-label="Tasks per status">
        {TASK_STATUSES.map((value) => (
          <li key={value} data-status={value}>
            <StatusBadge status={value} /> <span className="count">{counts[value]}</span>
          </li>
        ))}
        <li data-status="total">
          total <span className="count">{counts.total}</span>
        </li>
      </ul>
      <p className="hint">The job {policy}.</p>
      <label htmlFor="task-status">Show tasks</label>{' '}
      <select id="task-status" value={status} onChange={(e) => onStatus(e.target.value)}>
        <option value="">any status</option>
        {TASK_STATUSES.map((value) => (
          <option key={value} value={value}>
            {value}
          </option>
        ))}
      </select>
      <div className="table-wrap">
        <table>
          <caption className="visually-hidden">Child tasks</caption>
          <thead>
            <tr>
              <th scope="col">Task</th>
              <th scope="col">Status</th>
              <th scope="col">Attempts</th>
              <th scope="col">Error</th>
            </tr>
          </thead>
          <tbody>
            {tasks.items.map((task) => (
              <tr key={task.id}>
                <td>
                  <Link to={`${CONSOLE_PAGES.job}/${task.id}`}>
                    {task.type} {shortId(task.id)}
                  </Link>
                </td>
                <td>
                  <StatusBadge status={task.status} />
                </td>
                <td>{task.attempts}</td>
                <td>{task.error ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {tasks.nextCursor ? <p>Showing the first {tasks.items.length} tasks of this selection.</p> : null}
    </section>
  );
}
