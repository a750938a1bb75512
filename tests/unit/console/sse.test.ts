import { SseParser, type SseMessage } from '../../../services/console/src/sse';

/** Feeds the text in the given pieces and collects what the parser dispatched. */
function parse(pieces: string[], parser = new SseParser()): SseMessage[] {
  return pieces.flatMap((piece) => parser.push(piece));
}

describe('SSE parser (services/console/src/sse.ts)', () => {
  it('dispatches a message at the blank line, with its id, type and data', () => {
    expect(parse(['id: 7\nevent: state\ndata: {"to":"running"}\n\n'])).toEqual([{ type: 'state', data: '{"to":"running"}', lastEventId: '7' }]);
  });

  it('gives the same messages however the network splits the text, CRLF and CR included', () => {
    const stream = 'retry: 2000\r\n\r\nid: 1\r\ndata: a\r\n\r\nid: 2\rdata: b\rdata: c\r\r: keep-alive\n\nid: 3\ndata: d\n\n';
    const whole = parse([stream]);
    expect(whole).toEqual([
      { type: 'message', data: 'a', lastEventId: '1' },
      { type: 'message', data: 'b\nc', lastEventId: '2' },
      { type: 'message', data: 'd', lastEventId: '3' },
    ]);
    for (let size = 1; size <= 7; size += 1) {
      const pieces = stream.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g')) ?? [];
      expect(parse(pieces)).toEqual(whole);
    }
  });

  it('ignores comments, unknown fields and a blank line without data, but keeps the id it saw', () => {
    const parser = new SseParser();
    expect(parse([': heartbeat\n\n', 'foo: bar\nid: 41\n\n'], parser)).toEqual([]);
    expect(parser.lastEventId).toBe('41');
    expect(parse(['data: x\n\n'], parser)).toEqual([{ type: 'message', data: 'x', lastEventId: '41' }]);
  });

  it('reads `retry` only when it is all digits, and strips one space after the colon only', () => {
    const parser = new SseParser();
    parse(['retry: 1500\n', 'retry: soon\n', 'data:  two spaces\n', 'data:none\n', 'data\n\n'], parser);
    expect(parser.retry).toBe(1500);
    expect(parse(['data:  two spaces\ndata:none\ndata\n\n'])).toEqual([{ type: 'message', data: ' two spaces\nnone\n', lastEventId: '' }]);
  });

  it('skips a leading byte order mark and an id with a NUL in it', () => {
    expect(parse(['\uFEFFid: 1\ndata: a\n\nid: 2\u0000\ndata: b\n\n'])).toEqual([
      { type: 'message', data: 'a', lastEventId: '1' },
      { type: 'message', data: 'b', lastEventId: '1' },
    ]);
  });

  it('drops a message the stream cut before its blank line', () => {
    const parser = new SseParser();
    expect(parse(['id: 9\ndata: partial'], parser)).toEqual([]);
    parser.end();
    expect(parser.lastEventId).toBe('9');
    expect(parse(['\n\n'], parser)).toEqual([]);
  });
});
