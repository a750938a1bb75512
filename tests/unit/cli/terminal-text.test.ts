import { shownArgument, shownAsJson, shownAsText, shownValue } from '../../../services/cli/output';

describe('what the CLI prints for a terminal', () => {
  it('writes C0, DEL, C1 and bidi controls as escapes, and leaves other text alone', () => {
    expect(shownAsText('a\u001b[2Jb\u0007c\u007fd\u009be\u202Ef\u2066g\u200Fh\ni\tj')).toBe('a\\u001b[2Jb\\u0007c\\u007fd\\u009be\\u202ef\\u2066g\\u200fh\\u000ai\\u0009j');
    expect(shownAsText('résumé — 日本語 ✓')).toBe('résumé — 日本語 ✓');
  });

  it('keeps JSON the same data while writing the controls JSON.stringify leaves as escapes', () => {
    const value = { name: 'invoice\u202Efdp.exe', c1: '\u009b31m', esc: '\u001b[2J', nested: ['\u2067'] };
    const text = shownAsJson(value, 2);
    expect(text).not.toMatch(/[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(text).toContain('invoice\\u202efdp.exe');
    expect(JSON.parse(text)).toEqual(value);
  });

  it('shows a cell of any type on one line, and quotes the start of a long argument with its length', () => {
    expect(shownValue(null)).toBe('-');
    expect(shownValue(undefined)).toBe('-');
    expect(shownValue(3)).toBe('3');
    expect(shownValue({ a: 'x\ny' })).toBe('{"a":"x\\ny"}');
    expect(shownValue('two\nlines')).toBe('two\\u000alines');
    expect(shownArgument('short')).toBe('"short"');
    expect(shownArgument(`${'a'.repeat(100_000)}@x.com`)).toBe(`"${'a'.repeat(80)}"… (100006 characters)`);
    expect(shownArgument('\u202E')).toBe('"\\u202e"');
  });
});
