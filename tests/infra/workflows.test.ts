/**
 * The delivery pipeline: every workflow file is valid for GitHub Actions (action-validator,
 * offline), and the pipeline has the shape a platform team relies on: tests and a policy-
 * checked preview of each stack on pull requests; on main, dev then prod behind a protected
 * environment; AWS only through OIDC; one deploy per stack at a time.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT, yamlParser } from '../../tools/offline/capture';

const DIR = path.join(REPO_ROOT, '.github', 'workflows');
const VALIDATOR = path.join(REPO_ROOT, 'node_modules', '.bin', 'action-validator');

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  needs?: string | string[];
  uses?: string;
  environment?: string | { name: string };
  concurrency?: { group: string; 'cancel-in-progress'?: boolean };
  permissions?: Record<string, string>;
  steps?: Step[];
  strategy?: { matrix: { include?: Record<string, string>[] } };
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  jobs: Record<string, Job>;
}

const files = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f));
const load = (file: string) => yamlParser().load(readFileSync(path.join(DIR, file), 'utf8')) as Workflow;
const steps = (job: Job | undefined) => job?.steps ?? [];
const runs = (job: Job | undefined) => steps(job).map((s) => s.run ?? '').join('\n');

function validate(file: string): { ok: boolean; output: string } {
  try {
    return { ok: true, output: execFileSync(VALIDATOR, [file], { encoding: 'utf8', stdio: 'pipe' }) };
  } catch (error) {
    // The validator prints its JSON list of errors on stderr.
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${stdout ?? ''}${stderr ?? ''}` };
  }
}

describe('workflow files', () => {
  it.each(files)('%s is a valid GitHub Actions workflow', (file) => {
    const result = validate(path.join(DIR, file));
    expect(result).toEqual({ ok: true, output: expect.any(String) });
  });

  it('are really checked: a misspelt key fails the validator', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pk-workflow-'));
    try {
      const bad = path.join(dir, 'bad.yml');
      writeFileSync(bad, readFileSync(path.join(DIR, 'test.yml'), 'utf8').replace('runs-on:', 'runs-onn:'));
      const result = validate(bad);
      expect(result.ok).toBe(false);
      expect(result.output).toContain("Additional property 'runs-onn' is not allowed");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never hold AWS access keys: every AWS session comes from an OIDC role', () => {
    for (const file of files) {
      const text = readFileSync(path.join(DIR, file), 'utf8');
      expect(text).not.toMatch(/aws-access-key-id|aws-secret-access-key|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|secrets\.AWS/i);
      const workflow = load(file);
      expect(workflow.permissions).toEqual({ contents: 'read' });
      for (const [name, job] of Object.entries(workflow.jobs)) {
        const assumes = steps(job).filter((s) => s.uses?.startsWith('aws-actions/configure-aws-credentials@'));
        if (assumes.length > 0) {
          expect({ job: name, idToken: job.permissions?.['id-token'] }).toEqual({ job: name, idToken: 'write' });
          for (const s of assumes) expect(String(s.with?.['role-to-assume'])).toMatch(/^\$\{\{ vars\[?\.?/);
        } else {
          expect({ job: name, idToken: job.permissions?.['id-token'] }).toEqual({ job: name, idToken: undefined });
        }
      }
    }
  });
});

describe('pipeline', () => {
  it('runs npm test through .ci/run, the same command CI runs on a fresh clone', () => {
    const test = load('test.yml');
    expect(Object.keys(test.on)).toEqual(['workflow_call']);
    expect(runs(test.jobs['npm-test'])).toContain('bash .ci/run');
    expect(readFileSync(path.join(REPO_ROOT, '.ci', 'run'), 'utf8')).toMatch(/^npm test$/m);
  });

  it('tests and previews both stacks with the policy pack on pull requests', () => {
    const pr = load('pull-request.yml');
    expect(Object.keys(pr.on)).toEqual(['pull_request']);
    expect(pr.jobs.test?.uses).toBe('./.github/workflows/test.yml');
    const preview = pr.jobs.preview;
    expect(preview?.needs).toBe('test');
    expect(preview?.strategy?.matrix.include?.map((m) => m.stack)).toEqual(['dev', 'prod']);
    expect(runs(preview)).toMatch(/pulumi preview --stack "\$\{\{ matrix\.stack \}\}" --policy-pack policies/);
    expect(runs(preview)).not.toMatch(/pulumi up/);
  });

  it('deploys main to dev, then to prod behind the protected prod environment, one deploy per stack at a time', () => {
    const deploy = load('deploy.yml');
    expect(Object.keys(deploy.on)).toEqual(['push', 'workflow_dispatch']);
    expect(deploy.on.push).toEqual({ branches: ['main'] });
    const { dev, prod } = deploy.jobs;
    expect(dev?.needs).toBe('test');
    expect(prod?.needs).toBe('dev');
    for (const [stack, job] of [['dev', dev], ['prod', prod]] as const) {
      expect(job?.environment).toMatchObject({ name: stack });
      expect(job?.concurrency).toEqual({ group: `pulumi-up-${stack}`, 'cancel-in-progress': false });
      expect(runs(job)).toContain(`pulumi up --stack ${stack} --policy-pack policies --yes`);
    }
  });
});
