import type { Logger } from '../../../services/core/logger';
import { OutageLog } from '../../../services/core/outage-log';

function recordingLog() {
  const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, message: string) => lines.push({ level, fields, message });
  return { log: { warn: at('warn'), debug: at('debug'), info: at('info') } as unknown as Logger, lines };
}

const LINES = { firstFailure: 'sweep failed (further failures are counted until a sweep succeeds)', laterFailure: 'sweep failed', recovered: 'sweep succeeds again', countField: 'failedSweeps' };

describe('OutageLog', () => {
  it('warns at the first failure of an outage, counts the later ones at debug, and says the count at the first success', () => {
    const { log, lines } = recordingLog();
    const outage = new OutageLog(log, LINES);
    const error = new Error('ECONNREFUSED');
    for (let failure = 0; failure < 4; failure += 1) outage.failed(error, { jobs: 2 });
    expect(outage.failing).toBe(true);
    outage.succeeded({ failedJobs: 8 });
    expect(lines.map(({ level, message }) => `${level}: ${message}`)).toEqual([
      `warn: ${LINES.firstFailure}`,
      `debug: ${LINES.laterFailure}`,
      `debug: ${LINES.laterFailure}`,
      `debug: ${LINES.laterFailure}`,
      `info: ${LINES.recovered}`,
    ]);
    expect(lines[0]?.fields).toEqual({ err: error, jobs: 2 });
    expect(lines[4]?.fields).toEqual({ failedSweeps: 4, failedJobs: 8 });
    expect(outage.failing).toBe(false);
  });

  it('says nothing of successes outside an outage, and warns again at the next outage', () => {
    const { log, lines } = recordingLog();
    const outage = new OutageLog(log, LINES);
    outage.succeeded();
    expect(lines).toEqual([]);
    outage.failed(new Error('first'));
    outage.succeeded();
    outage.failed(new Error('second'));
    expect(lines.map(({ level }) => level)).toEqual(['warn', 'info', 'warn']);
    expect(lines[1]?.fields).toEqual({ failedSweeps: 1 });
  });
});
