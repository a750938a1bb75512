import { accessTokens, runLoad } from './driver';
import type { LoadResult } from './load-generator';
import { startBenchPlatform } from './platform';

/**
 * One user reading job data back while another submits: user A has JOBS echo jobs of
 * PAYLOAD_BYTES and reads them in pages that include inputs and results, READERS requests
 * at a time, as fast as answered (a 429 waits its Retry-After); user B submits echo jobs at a
 * steady RATE/s through the bench's own generator, first alone, then beside A's reads.
 * Twice, on fresh platforms: with the defaults (JOB_DATA_READ_BYTES_PER_SECOND) and with
 * that limit lifted, so the section shows what the limit is worth in the same run.
 */

const JOBS = 100;
const PAYLOAD_BYTES = 40_000;
const READERS = 8;
const RATE = 200;
const SUBMIT_BODY = JSON.stringify({ type: 'echo', input: { payload: { from: 'the other user' } } });
const LIFTED = { JOB_DATA_READ_BYTES_PER_SECOND: String(1_024 ** 3) };

export interface ReadsBesideSubmits {
  setting: 'defaults' | 'byte budget lifted';
  alone: LoadResult;
  beside: LoadResult;
  reader: { pagesPerSecond: number; mibPerSecond: number; refused: number; served: number };
}

async function submitAll(apiUrl: string, token: string): Promise<void> {
  const body = (index: number) => JSON.stringify({ type: 'echo', input: { payload: `${index}${'r'.repeat(PAYLOAD_BYTES)}` } });
  for (let index = 0; index < JOBS; index += 1) {
    const response = await fetch(`${apiUrl}/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body(index) });
    await response.arrayBuffer();
    // Past the user's SUBMIT_BYTES_PER_SECOND: wait as told and send the same job again.
    if (response.status === 429) {
      await new Promise((resolve) => setTimeout(resolve, Number(response.headers.get('retry-after') ?? 1) * 1_000));
      index -= 1;
    } else if (response.status !== 202) throw new Error(`submit: ${response.status}`);
  }
}

async function measureOne(setting: ReadsBesideSubmits['setting'], seconds: number): Promise<ReadsBesideSubmits> {
  const platform = await startBenchPlatform({ env: setting === 'defaults' ? {} : LIFTED });
  try {
    const [reader, submitter] = (await accessTokens(platform.apiUrl, 2)) as [string, string];
    await submitAll(platform.apiUrl, reader);
    const submits = () => runLoad({ url: `${platform.apiUrl}/v1/jobs`, tokens: [submitter], body: SUBMIT_BODY, connections: 16, overallRate: RATE, durationSeconds: seconds });
    const alone = await submits();

    let reading = true;
    let served = 0;
    let refused = 0;
    let bytes = 0;
    const readLoop = async () => {
      while (reading) {
        const response = await fetch(`${platform.apiUrl}/v1/jobs?include=input,result&limit=100`, { headers: { authorization: `Bearer ${reader}` } });
        const body = await response.arrayBuffer();
        if (response.status === 200) {
          served += 1;
          bytes += body.byteLength;
        } else {
          refused += 1;
          await new Promise((resolve) => setTimeout(resolve, Number(response.headers.get('retry-after') ?? 1) * 1_000));
        }
      }
    };
    const loops = Array.from({ length: READERS }, readLoop);
    const started = performance.now();
    const beside = await submits();
    const elapsed = (performance.now() - started) / 1_000;
    const servedMeanwhile = served;
    const bytesMeanwhile = bytes;
    reading = false;
    await Promise.all(loops);
    return { setting, alone, beside, reader: { pagesPerSecond: servedMeanwhile / elapsed, mibPerSecond: bytesMeanwhile / elapsed / 1_048_576, refused, served } };
  } finally {
    await platform.stop();
  }
}

export async function measureReadsBesideSubmits(seconds: number): Promise<ReadsBesideSubmits[]> {
  return [await measureOne('defaults', seconds), await measureOne('byte budget lifted', seconds)];
}

export const READS_HEADING = "## One user's reads beside another's submits";

export function readsSection(results: readonly ReadsBesideSubmits[], header: string): string {
  const rows = results.map(
    ({ setting, alone, beside, reader }) =>
      `| ${setting} | ${alone.latencyMs.p50} / ${alone.latencyMs.p99} ms | **${beside.latencyMs.p50} / ${beside.latencyMs.p99} ms** (max ${beside.latencyMs.max}) | ${reader.pagesPerSecond.toFixed(1)} pages/s, ${reader.mibPerSecond.toFixed(1)} MiB/s; ${reader.refused} of ${reader.served + reader.refused} reads answered 429 |`,
  );
  return `${READS_HEADING}

${header}

User A reads ${JOBS} echo jobs of ${PAYLOAD_BYTES / 1_000} KB back in pages that include their inputs and results (\`GET /v1/jobs?include=input,result&limit=100\`, ${READERS} at a time, a 429 waiting its Retry-After); user B submits echo jobs at ${RATE}/s (the bench's generator, latency counted from when each request was due), alone and then beside A's reads. Each setting on a platform of its own; with the byte budget lifted (\`JOB_DATA_READ_BYTES_PER_SECOND\` 1 GiB), a user's reads are still held to 2 at once per API process.

| setting | B's submits alone, p50 / p99 | B's submits beside A's reads, p50 / p99 | A's reads meanwhile |
| --- | --- | --- | --- |
${rows.join('\n')}
`;
}
