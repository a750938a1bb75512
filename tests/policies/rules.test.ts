import { ALL_POLICIES } from '../../policies/catalog';
import { CASES } from './cases';
import { violationsOf } from './helpers';

describe('every policy has a crafted pair', () => {
  it('covers each policy of the pack and nothing else', () => {
    expect(Object.keys(CASES).sort()).toEqual(ALL_POLICIES.map((p) => p.name).sort());
  });
});

describe.each(Object.entries(CASES))('%s', (policy, { bad, good }) => {
  it.each(bad.map((s) => [s.what, s] as const))('fires on %s', async (_what, scenario) => {
    const violations = await violationsOf(policy, scenario.resources(), scenario.stack);
    expect(violations.length).toBeGreaterThan(0);
    expect(violations.map((v) => v.message).join('\n')).toMatch(scenario.message);
    for (const v of violations) expect(v.urn).toMatch(/^urn:pulumi:/);
  });
  it.each(good.map((s) => [s.what, s] as const))('passes %s', async (_what, scenario) => {
    expect(await violationsOf(policy, scenario.resources(), scenario.stack)).toEqual([]);
  });
});
