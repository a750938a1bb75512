import { TooManyRequestsError } from '../../../services/api/errors';
import { SlowBodies } from '../../../services/api/middleware/slow-bodies';

describe('SlowBodies', () => {
  let now = 0;
  const clock = () => now;

  beforeEach(() => {
    now = 1_000_000;
  });

  it('lets any number of bodies arrive at once while none has been arriving for longer than the grace', () => {
    const bodies = new SlowBodies(2, 1_000, 3, clock);
    const done = Array.from({ length: 50 }, () => bodies.start('ada'));
    now += 999;
    expect(() => bodies.start('ada')).not.toThrow();
    for (const release of done) release();
  });

  it('refuses a new body of an owner with `most` bodies arriving for longer than the grace, and only that owner', () => {
    const bodies = new SlowBodies(2, 1_000, 3, clock);
    const first = bodies.start('ada');
    bodies.start('ada');
    now += 1_001;
    let refusal: unknown;
    try {
      bodies.start('ada');
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(TooManyRequestsError);
    expect((refusal as TooManyRequestsError).retryAfterSeconds).toBe(3);
    expect(() => bodies.start('grace')).not.toThrow();
    // One of the slow ones has arrived: room again.
    first();
    expect(() => bodies.start('ada')).not.toThrow();
  });

  it('counts a body once however often its end is told, and forgets an owner with nothing arriving', () => {
    const bodies = new SlowBodies(1, 1_000, 3, clock);
    const release = bodies.start('ada');
    release();
    release();
    const again = bodies.start('ada');
    now += 2_000;
    expect(() => bodies.start('ada')).toThrow(TooManyRequestsError);
    again();
    expect((bodies as unknown as { arriving: Map<string, unknown> }).arriving.size).toBe(0);
  });
});
