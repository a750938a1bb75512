import { throttleProgress } from '../../../services/worker/progress-throttle';

describe('throttleProgress', () => {
  let written: number[];
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
    written = [];
  });
  afterEach(() => jest.useRealTimers());

  it('writes the first report at once and the last of the following ones when the interval is over', () => {
    const progress = throttleProgress((percent) => written.push(percent), 500);
    progress.report(10);
    expect(written).toEqual([10]);
    progress.report(20);
    progress.report(30);
    jest.advanceTimersByTime(499);
    expect(written).toEqual([10]);
    jest.advanceTimersByTime(1);
    expect(written).toEqual([10, 30]);
  });

  it('writes at once again when a report comes after a quiet interval', () => {
    const progress = throttleProgress((percent) => written.push(percent), 500);
    progress.report(10);
    jest.advanceTimersByTime(800);
    progress.report(50);
    expect(written).toEqual([10, 50]);
  });

  it('clamps to 0-100 and ignores values that are not finite', () => {
    const progress = throttleProgress((percent) => written.push(percent), 0);
    progress.report(150);
    progress.report(-5);
    progress.report(Number.NaN);
    progress.report(Number.POSITIVE_INFINITY);
    expect(written).toEqual([100, 0]);
  });

  it('writes nothing after stop, not even a write already scheduled', () => {
    const progress = throttleProgress((percent) => written.push(percent), 500);
    progress.report(10);
    progress.report(90);
    progress.stop();
    progress.report(95);
    jest.advanceTimersByTime(1_000);
    expect(written).toEqual([10]);
  });
});
