import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { csvSummary, echo, emailSend, fileChecksum, fileCompress, JOB_TYPES, sleep, textStats } from '../../../services/contract';
import { NotFoundError } from '../../../services/core/errors';
import csvSummaryProcessor, { summariseCsv } from '../../../services/worker/jobs/csv-summary';
import echoProcessor from '../../../services/worker/jobs/echo';
import emailSendProcessor from '../../../services/worker/jobs/email-send';
import fileChecksumProcessor from '../../../services/worker/jobs/file-checksum';
import fileCompressProcessor from '../../../services/worker/jobs/file-compress';
import { findProcessor, PROCESSORS } from '../../../services/worker/jobs';
import sleepProcessor from '../../../services/worker/jobs/sleep';
import textStatsProcessor, { TextStatsAccumulator } from '../../../services/worker/jobs/text-stats';
import { PermanentJobError } from '../../../services/worker/processor';
import { ProcessorTestBed } from './processor-context';

/** The filesystem driver reads in chunks of this size, so content can be placed across a boundary. */
const READ_CHUNK = 64 * 1024;

let bed: ProcessorTestBed;

beforeEach(async () => {
  bed = await ProcessorTestBed.create();
});

afterEach(async () => {
  await bed.destroy();
});

describe('PROCESSORS', () => {
  it('has exactly one processor per declared job type, each for its own declaration', () => {
    expect(Object.keys(PROCESSORS).sort()).toEqual(Object.keys(JOB_TYPES).sort());
    for (const [type, processor] of Object.entries(PROCESSORS)) {
      expect(processor.definition).toBe(JOB_TYPES[type as keyof typeof JOB_TYPES]);
    }
    expect(findProcessor('file.checksum')).toBe(PROCESSORS['file.checksum']);
    expect(findProcessor('toString')).toBeUndefined();
    expect(findProcessor('no.such.type')).toBeUndefined();
  });
});

describe('echo', () => {
  it('returns its payload', async () => {
    const payload = { nested: [1, 'two', { three: null }] };
    expect(await echoProcessor.run(bed.context(echo, { payload }))).toEqual({ result: { payload } });
    expect(await echoProcessor.run(bed.context(echo, {}))).toEqual({ result: { payload: undefined } });
  });
});

describe('sleep', () => {
  it('sleeps the given time', async () => {
    expect(await sleepProcessor.run(bed.context(sleep, { ms: 0 }))).toEqual({ result: { sleptMs: 0 } });
    expect(await sleepProcessor.run(bed.context(sleep, { ms: 20 }))).toEqual({ result: { sleptMs: 20 } });
  });

  it('reports progress on a long sleep and rejects as soon as it is aborted', async () => {
    const controller = new AbortController();
    const context = bed.context(sleep, { ms: 600_000 }, { signal: controller.signal });
    const reportedOnce = new Promise<void>((resolve) => {
      context.progress = (percent) => {
        bed.progress.push(percent);
        resolve();
      };
    });
    const sleeping = sleepProcessor.run(context);
    await reportedOnce;
    controller.abort();
    await expect(sleeping).rejects.toMatchObject({ name: 'AbortError' });
    expect(bed.progress.length).toBeGreaterThan(0);
    expect(bed.progress.every((percent) => percent >= 0 && percent < 100)).toBe(true);
  });

  it('does not start when already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(sleepProcessor.run(bed.context(sleep, { ms: 600_000 }, { signal: controller.signal }))).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('file.checksum', () => {
  it.each(['sha256', 'sha1', 'md5'] as const)('computes %s like node:crypto, streaming with progress', async (algorithm) => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const file = await bed.addFile('data.bin', data);
    const outcome = await fileChecksumProcessor.run(bed.context(fileChecksum, { fileId: file.id, algorithm }));
    expect(outcome).toEqual({ result: { algorithm, digest: createHash(algorithm).update(data).digest('hex') } });
    // Several chunks: progress rises strictly and ends at 100.
    expect(bed.progress.length).toBeGreaterThan(10);
    expect(bed.progress.every((percent, index) => index === 0 || percent > (bed.progress[index - 1] ?? -1))).toBe(true);
    expect(bed.progress.at(-1)).toBe(100);
  });

  it('defaults to sha256 and handles an empty file', async () => {
    const file = await bed.addFile('empty', Buffer.alloc(0));
    const outcome = await fileChecksumProcessor.run(bed.context(fileChecksum, { fileId: file.id }));
    expect(outcome.result).toEqual({ algorithm: 'sha256', digest: createHash('sha256').digest('hex') });
  });

  it('fails with NotFoundError for a file the owner does not have', async () => {
    await expect(fileChecksumProcessor.run(bed.context(fileChecksum, { fileId: '00000000-0000-4000-8000-000000000000' }))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('stops when aborted between chunks', async () => {
    const file = await bed.addFile('data.bin', randomBytes(4 * 1024 * 1024));
    const controller = new AbortController();
    const context = bed.context(fileChecksum, { fileId: file.id }, { signal: controller.signal });
    context.progress = (percent) => {
      bed.progress.push(percent);
      if (percent >= 10) controller.abort();
    };
    await expect(fileChecksumProcessor.run(context)).rejects.toMatchObject({ name: 'AbortError' });
    expect(Math.max(...bed.progress)).toBeLessThan(100);
  });
});

describe('file.compress', () => {
  const text = Buffer.from('All work and no play makes Jack a dull boy.\n'.repeat(20_000));

  it.each([
    ['gzip', gunzipSync, '.gz', 'application/gzip'],
    ['brotli', brotliDecompressSync, '.br', 'application/x-brotli'],
  ] as const)('compresses with %s into an output file that decompresses to the original', async (format, decompress, extension, contentType) => {
    const file = await bed.addFile('jack.txt', text, 'text/plain');
    const jobId = '7a4b7c1e-3c55-4b53-9a0e-2f4f1f3c8d10';
    const outcome = await fileCompressProcessor.run(bed.context(fileCompress, { fileId: file.id, format }, { jobId }));

    const output = bed.outputs.get(jobId);
    expect(output?.view).toMatchObject({ name: `jack.txt${extension}`, contentType });
    const compressed = await bed.read(output?.key ?? '');
    expect(decompress(compressed).equals(text)).toBe(true);
    expect(outcome).toEqual({
      result: { format, size: compressed.length, ratio: Number((compressed.length / text.length).toPrecision(4)) },
      resultFileId: output?.view.id,
    });
    expect(outcome.result.ratio).toBeLessThan(0.05);
    expect(bed.progress.at(-1)).toBe(100);
  });

  it('defaults to gzip, and a re-run overwrites the same output instead of adding one', async () => {
    const file = await bed.addFile('jack.txt', text);
    const jobId = 'c0ffee00-0000-4000-8000-000000000001';
    const first = await fileCompressProcessor.run(bed.context(fileCompress, { fileId: file.id }, { jobId }));
    const second = await fileCompressProcessor.run(bed.context(fileCompress, { fileId: file.id }, { jobId }));
    expect(second).toEqual(first);
    expect(first.result.format).toBe('gzip');
    expect(await readdir(path.join(bed.root, 'outputs', jobId))).toEqual(['jack.txt.gz']);
  });

  it('reports ratio 1 for an empty file', async () => {
    const file = await bed.addFile('empty.txt', '');
    const outcome = await fileCompressProcessor.run(bed.context(fileCompress, { fileId: file.id }));
    expect(outcome.result.ratio).toBe(1);
    expect(gunzipSync(await bed.read(bed.outputs.values().next().value?.key ?? '')).length).toBe(0);
  });

  it('stops when aborted and publishes no output', async () => {
    const file = await bed.addFile('noise.bin', randomBytes(4 * 1024 * 1024));
    const controller = new AbortController();
    const jobId = 'c0ffee00-0000-4000-8000-000000000002';
    const context = bed.context(fileCompress, { fileId: file.id }, { jobId, signal: controller.signal });
    context.progress = (percent) => {
      if (percent >= 10) controller.abort();
    };
    await expect(fileCompressProcessor.run(context)).rejects.toMatchObject({ name: 'AbortError' });
    expect(bed.outputs.has(jobId)).toBe(false);
    expect(await readdir(path.join(bed.root, 'outputs', jobId)).catch(() => [])).toEqual([]);
  });
});

describe('text.stats', () => {
  it('counts bytes, lines, words and the top words of crafted text', async () => {
    const content = [
      'The cat and the hat.',
      'THE CAT, the café — café! 42 apples; 42 pears.',
      "Don't stop: straße STRASSE Straße",
      'e\u0301 é', // decomposed and composed é are one word
      '',
    ].join('\n');
    const file = await bed.addFile('text.txt', content, 'text/plain');
    const { result } = await textStatsProcessor.run(bed.context(textStats, { fileId: file.id }));
    expect(result.bytes).toBe(Buffer.byteLength(content));
    expect(result.lines).toBe(4);
    // the×4, cat×2, café×2, 42×2, straße×2, é×2, then single words by code-point order.
    expect(result.words).toBe(5 + 9 + 6 + 2);
    expect(result.topWords).toEqual([
      { word: 'the', count: 4 },
      { word: '42', count: 2 },
      { word: 'café', count: 2 },
      { word: 'cat', count: 2 },
      { word: 'straße', count: 2 },
      { word: 'é', count: 2 },
      { word: 'and', count: 1 },
      { word: 'apples', count: 1 },
      { word: 'don', count: 1 },
      { word: 'hat', count: 1 },
    ]);
  });

  it.each([
    ['', 0],
    ['\n', 1],
    ['one', 1],
    ['one\ntwo', 2],
    ['one\ntwo\n', 2],
    ['one\r\ntwo\r\n', 2],
  ])('counts lines of %j as %d', async (content, lines) => {
    const accumulator = new TextStatsAccumulator();
    accumulator.push(Buffer.from(content));
    expect(accumulator.finish().lines).toBe(lines);
  });

  it('keeps words and multi-byte characters whole across the 64 KiB read boundary', async () => {
    // "straße" starts two bytes before the first boundary; "日本" straddles the second with a split 3-byte character.
    const firstFiller = 'x '.repeat((READ_CHUNK - 2) / 2);
    const middle = 'straße ';
    // Ends 4 bytes before the second boundary: 日 (3 bytes) fits, 本 is split 1 + 2.
    const secondFiller = 'y '.repeat((READ_CHUNK - Buffer.byteLength(middle)) / 2 - 1);
    const content = `${firstFiller}${middle}${secondFiller}日本 end`;
    expect(Buffer.byteLength(`${firstFiller}${middle}${secondFiller}`)).toBeLessThan(2 * READ_CHUNK);
    expect(Buffer.byteLength(`${firstFiller}${middle}${secondFiller}日本`)).toBeGreaterThan(2 * READ_CHUNK);
    const file = await bed.addFile('boundary.txt', content, 'text/plain');
    const { result } = await textStatsProcessor.run(bed.context(textStats, { fileId: file.id }));
    const words = new Map(result.topWords.map(({ word, count }) => [word, count]));
    expect(words.get('straße')).toBe(1);
    expect(words.get('日本')).toBe(1);
    expect(words.has('stra')).toBe(false);
    expect(result.words).toBe((READ_CHUNK - 2) / 2 + 1 + secondFiller.length / 2 + 2);
  });

  it('gives the same result however the bytes are split into chunks', () => {
    const data = Buffer.from('Grüße aus Köln! ＡＢＣ 123abc e\u0301t\u00e9 😀 emoji-free words\nzweite Zeile');
    const whole = new TextStatsAccumulator();
    whole.push(data);
    const expected = whole.finish();
    for (let split = 1; split < data.length; split += 1) {
      const accumulator = new TextStatsAccumulator();
      accumulator.push(data.subarray(0, split));
      accumulator.push(data.subarray(split));
      expect({ split, stats: accumulator.finish() }).toEqual({ split, stats: expected });
    }
    // And byte by byte.
    const byteWise = new TextStatsAccumulator();
    for (const byte of data) byteWise.push(Buffer.from([byte]));
    expect(byteWise.finish()).toEqual(expected);
  });

  it('keeps memory bounded on a huge vocabulary and still finds the frequent words', () => {
    const accumulator = new TextStatsAccumulator();
    let words = 0;
    for (let batch = 0; batch < 50; batch += 1) {
      const parts: string[] = [];
      for (let index = 0; index < 5_000; index += 1) parts.push(`common unique${batch}x${index}`);
      accumulator.push(Buffer.from(`${parts.join(' ')} `));
      words += parts.length * 2;
    }
    const stats = accumulator.finish();
    expect(stats.words).toBe(words);
    // 250,000 distinct words overflow the exact table; the error bound is words / table size, below 3 here.
    expect(stats.topWords[0]?.word).toBe('common');
    expect(stats.topWords[0]?.count).toBeGreaterThanOrEqual(250_000 - 3);
    expect(stats.topWords[0]?.count).toBeLessThanOrEqual(250_000);
  });

  it('breaks ties in topWords by word', () => {
    const accumulator = new TextStatsAccumulator();
    accumulator.push(Buffer.from('m l k j i h g f e d c b a a b'));
    expect(accumulator.finish().topWords.map(({ word }) => word)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']);
  });
});

describe('csv.summary', () => {
  async function summarise(content: string, input: Record<string, unknown> = {}) {
    const file = await bed.addFile('data.csv', content, 'text/csv');
    return (await csvSummaryProcessor.run(bed.context(csvSummary, { fileId: file.id, ...input }))).result;
  }

  it('handles RFC 4180 quoting, escaped quotes, embedded line breaks and CRLF', async () => {
    const content = 'name,age,note\r\n"Smith, J",42,"said ""hi"""\r\n"Multi\r\nline",7,\r\nBob,,plain\r\n';
    expect(await summarise(content)).toEqual({
      rows: 3,
      columns: [
        { name: 'name', count: 3, empty: 0 },
        { name: 'age', count: 2, empty: 1, numeric: { min: 7, max: 42, mean: 24.5 } },
        { name: 'note', count: 2, empty: 1 },
      ],
    });
  });

  it('names columns column1… without a header and honours the delimiter', async () => {
    expect(await summarise('1;-2.5\n3;1e3\n', { delimiter: ';', header: false })).toEqual({
      rows: 2,
      columns: [
        { name: 'column1', count: 2, empty: 0, numeric: { min: 1, max: 3, mean: 2 } },
        { name: 'column2', count: 2, empty: 0, numeric: { min: -2.5, max: 1000, mean: 498.75 } },
      ],
    });
  });

  it('takes a UTF-8 byte order mark (as spreadsheet programs save CSV) off the first column name', async () => {
    expect(await summarise('\uFEFFname,val\r\nx,1\r\n')).toEqual({
      rows: 1,
      columns: [
        { name: 'name', count: 1, empty: 0 },
        { name: 'val', count: 1, empty: 0, numeric: { min: 1, max: 1, mean: 1 } },
      ],
    });
    // The mark split across two chunks is still recognised.
    const bytes = Buffer.from('\uFEFFa\n1\n');
    expect(await summariseCsv([bytes.subarray(0, 2), bytes.subarray(2)], { delimiter: ',', header: true })).toEqual({
      rows: 1,
      columns: [{ name: 'a', count: 1, empty: 0, numeric: { min: 1, max: 1, mean: 1 } }],
    });
  });

  it('counts blank and missing cells as empty and drops numeric stats when any value is not a number', async () => {
    const content = 'a,b,c\n1,0x10,\n2,  ,x\n,Infinity\n4,5,6,extra\n';
    expect(await summarise(content)).toEqual({
      rows: 4,
      columns: [
        { name: 'a', count: 3, empty: 1, numeric: { min: 1, max: 4, mean: 7 / 3 } },
        { name: 'b', count: 3, empty: 1 },
        { name: 'c', count: 2, empty: 2 },
        // Appears in row 4 only: the earlier rows had no cell for it.
        { name: 'column4', count: 1, empty: 3 },
      ],
    });
  });

  it('skips blank lines and does not count a final line break as a row', async () => {
    expect(await summarise('x\n\n1\n\r\n2\n\n')).toEqual({ rows: 2, columns: [{ name: 'x', count: 2, empty: 0, numeric: { min: 1, max: 2, mean: 1.5 } }] });
    expect(await summarise('x,y')).toEqual({ rows: 0, columns: [{ name: 'x', count: 0, empty: 0 }, { name: 'y', count: 0, empty: 0 }] });
    expect(await summarise('')).toEqual({ rows: 0, columns: [] });
    expect(await summarise('last,row\n1,"no newline at end"')).toMatchObject({ rows: 1 });
  });

  it('fails permanently on an unterminated quote', async () => {
    await expect(summarise('a,b\n1,"never closed\n2,3\n')).rejects.toBeInstanceOf(PermanentJobError);
    await expect(summarise('a,b\n1,"never closed\n2,3\n')).rejects.toThrow(/quoted field is not terminated before the end of the file/);
  });

  it('fails permanently on text after a closing quote', async () => {
    await expect(summarise('a\n"abc"x\n')).rejects.toBeInstanceOf(PermanentJobError);
  });

  it('rejects a delimiter that cannot separate fields', async () => {
    await expect(summarise('a"b\n', { delimiter: '"' })).rejects.toBeInstanceOf(PermanentJobError);
  });

  it('gives the same summary however the bytes are split into chunks', async () => {
    const data = Buffer.from('städt,"wert ""x""",n\r\n"Köln\r\nDom",1.5,\r\nBerlin,"2",3\r\n\r\n"",,"4"\r\nlast,7,8');
    const summarise = (chunks: Buffer[]) => summariseCsv(chunks, { delimiter: ',', header: true });
    const expected = await summarise([data]);
    expect(expected).toEqual({
      rows: 4,
      columns: [
        { name: 'städt', count: 3, empty: 1 },
        { name: 'wert "x"', count: 3, empty: 1, numeric: { min: 1.5, max: 7, mean: 3.5 } },
        { name: 'n', count: 3, empty: 1, numeric: { min: 3, max: 8, mean: 5 } },
      ],
    });
    for (let split = 1; split < data.length; split += 1) {
      expect({ split, summary: await summarise([data.subarray(0, split), data.subarray(split)]) }).toEqual({ split, summary: expected });
    }
    expect(await summarise([...data].map((byte) => Buffer.from([byte])))).toEqual(expected);
  });

  it('lets the event loop turn while it parses a chunk, however many ragged rows the chunk holds', async () => {
    // A read's worth of one-cell rows under a three-column header: every row is of another width than the first.
    const chunk = Buffer.from(`a,b,c\n${'7\n'.repeat(READ_CHUNK / 2)}`).subarray(0, READ_CHUNK);
    let turns = 0;
    const ticker = setInterval(() => (turns += 1), 0);
    try {
      const result = await summariseCsv([chunk], { delimiter: ',', header: true });
      expect(result.rows).toBe((READ_CHUNK - 6) / 2);
      expect(result.columns).toEqual([
        { name: 'a', count: result.rows, empty: 0, numeric: { min: 7, max: 7, mean: 7 } },
        { name: 'b', count: 0, empty: result.rows },
        { name: 'c', count: 0, empty: result.rows },
      ]);
    } finally {
      clearInterval(ticker);
    }
    // Other jobs of the worker get their turns between slices of the chunk, not only after all of it.
    expect(turns).toBeGreaterThanOrEqual(8);
  });

  it('summarises a file of many chunks with quoted fields across read boundaries', async () => {
    const rows = 30_000;
    let content = 'id,label,amount\n';
    let sum = 0;
    for (let id = 1; id <= rows; id += 1) {
      const amount = (id % 100) - 50;
      sum += amount;
      content += `${id},"item, ""${id}""\nsecond line",${amount}\n`;
    }
    expect(content.length).toBeGreaterThan(10 * READ_CHUNK);
    const result = await summarise(content);
    expect(result.rows).toBe(rows);
    expect(result.columns).toEqual([
      { name: 'id', count: rows, empty: 0, numeric: { min: 1, max: rows, mean: (rows + 1) / 2 } },
      { name: 'label', count: rows, empty: 0 },
      { name: 'amount', count: rows, empty: 0, numeric: { min: -50, max: 49, mean: expect.closeTo(sum / rows, 9) } },
    ]);
  });
});

describe('email.send', () => {
  const jobId = '5f1c2a4e-8b7d-4e3f-9a1b-2c3d4e5f6a7b';

  it('drops an RFC 5322 message in the mail drop and returns its Message-ID', async () => {
    const outcome = await emailSendProcessor.run(
      bed.context(emailSend, { to: 'ada@example.com', subject: 'Reset your password', text: 'Use this link:\nhttps://example.com/reset?t=abc\n' }, { jobId }),
    );
    expect(outcome).toEqual({ result: { messageId: `<${jobId}@platform-kit>` } });
    const message = (await bed.read(`mail/${jobId}.eml`)).toString();
    const headEnd = message.indexOf('\r\n\r\n');
    const head = message.slice(0, headEnd);
    const body = message.slice(headEnd + 4);
    expect(head.split('\r\n')).toEqual(
      expect.arrayContaining([
        'To: ada@example.com',
        'Subject: Reset your password',
        `Message-ID: <${jobId}@platform-kit>`,
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 7bit',
        expect.stringMatching(/^From: .+ <[^@\s]+@[^@\s]+>$/),
        expect.stringMatching(/^Date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/),
      ]),
    );
    expect(body).toBe('Use this link:\r\nhttps://example.com/reset?t=abc\r\n\r\n');
  });

  it('is idempotent per job: a re-run overwrites the same message', async () => {
    const input = { to: 'ada@example.com', subject: 'Hello', text: 'once' };
    const first = await emailSendProcessor.run(bed.context(emailSend, input, { jobId }));
    const second = await emailSendProcessor.run(bed.context(emailSend, input, { jobId }));
    expect(second).toEqual(first);
    expect(await readdir(path.join(bed.root, 'mail'))).toEqual([`${jobId}.eml`]);
  });

  it('encodes non-ASCII subjects and bodies and never lets a subject inject headers', async () => {
    await emailSendProcessor.run(
      bed.context(emailSend, { to: 'bob@example.com', subject: 'Grüße\r\nBcc: victim@example.com', text: 'Schöne Grüße' }, { jobId }),
    );
    const message = (await bed.read(`mail/${jobId}.eml`)).toString();
    const [head = '', body = ''] = message.split('\r\n\r\n');
    expect(head).not.toMatch(/^Bcc:/m);
    const subject = /^Subject: (.*(?:\r\n .*)*)/m.exec(head)?.[1] ?? '';
    const decoded = subject
      .split('\r\n ')
      .map((word) => Buffer.from(/^=\?UTF-8\?B\?(.*)\?=$/.exec(word)?.[1] ?? '', 'base64').toString())
      .join('');
    expect(decoded).toBe('Grüße Bcc: victim@example.com');
    expect(head).toMatch(/^Content-Transfer-Encoding: base64$/m);
    expect(Buffer.from(body.replace(/\r\n/g, ''), 'base64').toString()).toBe('Schöne Grüße');
  });
});
