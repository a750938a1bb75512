import { textStats, type JobOutput } from '../../contract';
import { readChunks } from '../file-chunks';
import { defineProcessor } from '../processor';

export type TextStats = JobOutput<typeof textStats>;

const TOP_WORDS = 10;
/**
 * Distinct words counted exactly. Past this many, counting switches to Misra-Gries
 * (a word absent from a full table decrements every counter), which keeps memory flat on
 * any input and still finds every word more frequent than words/limit; the top counts
 * are then lower bounds. Natural-language vocabularies stay well below the limit.
 */
const MAX_TRACKED_WORDS = 200_000;
/** A longer letter run (a base64 blob, say) is counted as one word, keyed by its first characters. */
const MAX_WORD_LENGTH = 256;

/** A word starts with a letter or a digit and goes on through letters, digits and combining marks (so `é` as e + U+0301 stays in its word). */
const WORD = /[\p{L}\p{N}][\p{L}\p{M}\p{N}]*/gu;
const WORD_CONTINUATION = /^[\p{L}\p{M}\p{N}]+/u;
const LINE_FEED = 0x0a;
/**
 * Text made only of characters below U+0300 (Latin, Latin-1, Latin Extended) is already in
 * NFC; skipping normalize() for it roughly halves the time per word on typical text.
 */
const MAY_NEED_NFC = /[\u0300-\uffff]/;

function capped(word: string): string {
  if (word.length <= MAX_WORD_LENGTH) return word;
  const cut = word.slice(0, MAX_WORD_LENGTH);
  const last = cut.charCodeAt(cut.length - 1);
  // Never keep half of a surrogate pair.
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}

function byCountThenWord(a: { word: string; count: number }, b: { word: string; count: number }): number {
  if (a.count !== b.count) return b.count - a.count;
  return a.word < b.word ? -1 : a.word > b.word ? 1 : 0;
}

/**
 * Text statistics over a stream of UTF-8 chunks. A word or a multi-byte character cut by
 * a chunk boundary is carried over to the next chunk, so the result does not depend on
 * how the bytes were split. `lines` counts line feeds, plus one for a last line without one.
 */
export class TextStatsAccumulator {
  // Not fatal: invalid bytes decode to U+FFFD, which is not a word character and ends a word.
  private readonly decoder = new TextDecoder('utf-8');
  private readonly counts = new Map<string, number>();
  private bytes = 0;
  private lineFeeds = 0;
  private lastByte = -1;
  private words = 0;
  /** The word at the end of the text decoded so far: it may continue in the next chunk. */
  private trailingWord = '';

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.bytes += chunk.length;
    for (let at = chunk.indexOf(LINE_FEED); at !== -1; at = chunk.indexOf(LINE_FEED, at + 1)) this.lineFeeds += 1;
    this.lastByte = chunk[chunk.length - 1] ?? this.lastByte;
    this.scan(this.decoder.decode(chunk, { stream: true }));
  }

  finish(): TextStats {
    this.scan(this.decoder.decode());
    if (this.trailingWord) this.count(this.trailingWord);
    this.trailingWord = '';
    const topWords = [...this.counts].map(([word, count]) => ({ word, count })).sort(byCountThenWord).slice(0, TOP_WORDS);
    const lines = this.lineFeeds + (this.bytes > 0 && this.lastByte !== LINE_FEED ? 1 : 0);
    return { bytes: this.bytes, lines, words: this.words, topWords };
  }

  private scan(text: string): void {
    let start = 0;
    if (this.trailingWord) {
      const continuation = WORD_CONTINUATION.exec(text)?.[0] ?? '';
      this.trailingWord = capped(this.trailingWord + continuation.slice(0, MAX_WORD_LENGTH));
      if (continuation.length === text.length) return;
      this.count(this.trailingWord);
      this.trailingWord = '';
      start = continuation.length;
    }
    WORD.lastIndex = start;
    for (let match = WORD.exec(text); match; match = WORD.exec(text)) {
      const word = match[0];
      if (match.index + word.length === text.length) {
        this.trailingWord = capped(word);
        break;
      }
      this.count(word);
    }
  }

  private count(rawWord: string): void {
    this.words += 1;
    const word = capped((MAY_NEED_NFC.test(rawWord) ? rawWord.normalize('NFC') : rawWord).toLowerCase());
    const current = this.counts.get(word);
    if (current !== undefined) {
      this.counts.set(word, current + 1);
    } else if (this.counts.size < MAX_TRACKED_WORDS) {
      this.counts.set(word, 1);
    } else {
      for (const [tracked, count] of this.counts) {
        if (count === 1) this.counts.delete(tracked);
        else this.counts.set(tracked, count - 1);
      }
    }
  }
}

export default defineProcessor(textStats, async ({ input, files, signal, progress }) => {
  const { file, body } = await files.open(input.fileId);
  const stats = new TextStatsAccumulator();
  for await (const chunk of readChunks(body, file.size, { signal, progress })) stats.push(chunk);
  return { result: stats.finish() };
});
