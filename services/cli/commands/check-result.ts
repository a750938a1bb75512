/** What one doctor check found: ok, warn or fail, and why. */
export type Verdict = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  check: string;
  verdict: Verdict;
  detail: string;
}
