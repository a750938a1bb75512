import { parseCompareArgs } from '../../../bench/compare-args';

describe('bench:compare command line', () => {
  it('compares at full speed through the bench generator, 3 runs of 10 s, when only a revision is given', () => {
    expect(parseCompareArgs(['main'])).toEqual({ revision: 'main', runs: 3, seconds: 10, rate: undefined, drain: undefined, generator: 'raw', job: 'echo' });
  });

  it('takes a rate, runs, seconds and autocannon as the generator', () => {
    expect(parseCompareArgs(['HEAD~1', '--rate=1000', '--runs=4', '--seconds=12', '--generator=autocannon'])).toEqual({
      revision: 'HEAD~1',
      runs: 4,
      seconds: 12,
      rate: 1000,
      drain: undefined,
      generator: 'autocannon',
      job: 'echo',
    });
  });

  it('takes the job every submit asks for: echo, or sleep in entries of their own', () => {
    expect(parseCompareArgs(['main', '--drain=3000', '--job=sleep'])).toMatchObject({ drain: 3000, job: 'sleep' });
    expect(() => parseCompareArgs(['main', '--job=csv'])).toThrow('--job must be one of echo, sleep, not "csv"');
  });

  it('refuses a flag it does not know, naming it, instead of comparing at full speed', () => {
    expect(() => parseCompareArgs(['main', '--rates=1000'])).toThrow(/--rates is not a flag of bench:compare/);
  });

  it('refuses counts that are not positive integers, naming the flag and the value', () => {
    expect(() => parseCompareArgs(['main', '--runs=0'])).toThrow('--runs must be a positive integer, not "0"');
    expect(() => parseCompareArgs(['main', '--seconds=1.5'])).toThrow(/--seconds must be a positive integer/);
    expect(() => parseCompareArgs(['main', '--rate=fast'])).toThrow(/--rate must be a positive integer, not "fast"/);
  });

  it('refuses a generator it cannot run', () => {
    expect(() => parseCompareArgs(['main', '--generator=wrk'])).toThrow('--generator must be one of raw, autocannon, not "wrk"');
  });

  it('refuses a flag without a value, or given twice', () => {
    expect(() => parseCompareArgs(['main', '--rate'])).toThrow(/--rate: flags take the form --name=value/);
    expect(() => parseCompareArgs(['main', '--runs=2', '--runs=3'])).toThrow('--runs is given twice');
  });

  it('needs exactly one revision', () => {
    expect(() => parseCompareArgs([])).toThrow(/^usage: npm run bench:compare/);
    expect(() => parseCompareArgs(['main', 'HEAD'])).toThrow(/^usage: npm run bench:compare/);
  });

  it('refuses combinations that measure nothing meaningful', () => {
    expect(() => parseCompareArgs(['main', '--rate=1000', '--drain=20000'])).toThrow('--rate and --drain measure different things');
    expect(() => parseCompareArgs(['main', '--drain=20000', '--generator=autocannon'])).toThrow(/--drain measures the worker alone/);
  });
});
