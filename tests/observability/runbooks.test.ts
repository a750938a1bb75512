import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { alertingRules } from '../../platform/observability/rules';
import { renderAlerting } from '../../platform/observability/render';
import { buildProgram } from '../../services/cli';
import { readStackFile } from '../../tools/observability/stack-file';

const RUNBOOKS = path.resolve(__dirname, '../../runbooks');
const PROCEDURES = path.join(RUNBOOKS, 'procedures');
const SECTIONS = ['Meaning', 'Impact', 'Diagnosis', 'Mitigation', 'Escalation'];

const markdown = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.md'));
const alertPages = () => markdown(RUNBOOKS).filter((f) => f !== 'README.md');
const allPages = () => [...alertPages().map((f) => path.join(RUNBOOKS, f)), ...markdown(PROCEDURES).map((f) => path.join(PROCEDURES, f)), path.join(RUNBOOKS, 'README.md')];

/** Splits a command line into words the way a POSIX shell would for these simple cases (quotes, no expansion). */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) words.push(m[1] ?? m[2] ?? (m[3] as string));
  return words;
}

/** Every `platform …` command inside a fenced code block of a page, with its line number. */
export function platformCommands(text: string): { line: number; argv: string[] }[] {
  const out: { line: number; argv: string[] }[] = [];
  let fenced = false;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line.startsWith('```')) {
      fenced = !fenced;
      return;
    }
    if (!fenced) return;
    const at = /(?:^|\s--\s+)platform\s+(.*)$/.exec(line);
    if (at) out.push({ line: i + 1, argv: shellWords(at[1] as string) });
  });
  return out;
}

/**
 * What an operator puts in place of a runbook's shell variables, so a command is parsed with
 * values as it would be run: the CLI checks flag values while parsing, before it connects.
 */
const PLACEHOLDER_VALUES: Record<string, string> = {
  $JOB_ID: '0190b6e2-4c1a-7d3e-9f10-2b3c4d5e6f70',
  $OTHER_JOB_ID: '0190b6e2-4c1a-7d3e-9f10-2b3c4d5e6f71',
  $PID: '4242',
  $EMAIL: 'leaver@example.com',
  $USER_ID: '0190b6e2-4c1a-7d3e-9f10-2b3c4d5e6f72',
};

/** The environment runbook commands run in (an api pod's): keys rotate needs the sealing secret before it connects. */
const POD_ENVIRONMENT = { KEY_ENCRYPTION_SECRET: 'k'.repeat(32) };

/** Parses argv with the real CLI definition; actions are recorded, never run. */
async function parses(words: string[]): Promise<{ ok: true; ran: number } | { ok: false; error: string }> {
  const argv = words.map((word) => PLACEHOLDER_VALUES[word] ?? word);
  let ran = 0;
  const program: Command = buildProgram(async () => {
    ran += 1;
  });
  let output = '';
  const silence = (p: Command) => {
    p.configureOutput({ writeOut: (s) => (output += s), writeErr: (s) => (output += s) });
    p.commands.forEach(silence);
  };
  silence(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return { ok: true, ran };
  } catch (error) {
    return { ok: false, error: `${(error as Error).message} ${output}`.trim() };
  }
}

describe('runbooks', () => {
  const { config } = readStackFile('prod');
  const saved = Object.fromEntries(Object.keys(POD_ENVIRONMENT).map((name) => [name, process.env[name]]));
  beforeAll(() => Object.assign(process.env, POD_ENVIRONMENT));
  afterAll(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  const alerts = alertingRules(renderAlerting(config.observability, new Set()).ruleGroups);

  it('have one page per alert and one alert per page', () => {
    expect(alertPages().map((f) => f.replace(/\.md$/, '')).sort()).toEqual(alerts.map((a) => a.alert).sort());
  });

  it('are where every alert\'s runbook_url points', () => {
    for (const a of alerts) {
      const url = new URL(a.annotations.runbook_url as string);
      expect(url.pathname.endsWith(`/runbooks/${a.alert}.md`)).toBe(true);
      expect(alertPages()).toContain(path.basename(url.pathname));
    }
  });

  it('give every alert page its Meaning, Impact, Diagnosis (with PromQL, LogQL or platform commands), Mitigation and Escalation', () => {
    for (const file of alertPages()) {
      const text = readFileSync(path.join(RUNBOOKS, file), 'utf8');
      expect({ file, title: text.split('\n')[0] }).toEqual({ file, title: `# ${file.replace(/\.md$/, '')}` });
      const headings = [...text.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
      expect({ file, headings }).toEqual({ file, headings: SECTIONS });
      const diagnosis = text.slice(text.indexOf('## Diagnosis'), text.indexOf('## Mitigation'));
      expect({ file, promql: diagnosis.includes('```promql') }).toEqual({ file, promql: true });
      expect({ file, commands: platformCommands(diagnosis).length > 0 || diagnosis.includes('```logql') }).toEqual({ file, commands: true });
      for (const section of SECTIONS) {
        const body = text.split(`## ${section}`)[1]?.split('\n## ')[0]?.trim() ?? '';
        expect({ file, section, long: body.length > 60 }).toEqual({ file, section, long: true });
      }
    }
  });

  it('are all listed in the index, procedures included, and every relative link resolves', () => {
    const index = readFileSync(path.join(RUNBOOKS, 'README.md'), 'utf8');
    for (const file of alertPages()) expect(index).toContain(`](${file})`);
    for (const file of markdown(PROCEDURES)) expect(index).toContain(`](procedures/${file})`);
    for (const page of allPages()) {
      for (const m of readFileSync(page, 'utf8').matchAll(/\]\(([^)#:]+\.md)\)/g)) {
        const target = path.resolve(path.dirname(page), m[1] as string);
        expect({ page: path.relative(RUNBOOKS, page), link: m[1], exists: markdown(path.dirname(target)).includes(path.basename(target)) }).toEqual({ page: path.relative(RUNBOOKS, page), link: m[1], exists: true });
      }
    }
  });

  it('cover the procedures an operator needs', () => {
    expect(markdown(PROCEDURES).sort()).toEqual(
      ['deploy-and-rollback.md', 'disable-an-account.md', 'redis-loss-and-reconcile.md', 'replay-dead-letters.md', 'restore-postgres-pitr.md', 'rotate-secrets.md', 'scale-workers.md', 'stuck-migration.md'].sort(),
    );
  });

  it('only use platform commands that parse with the CLI, without running anything', async () => {
    const failures: string[] = [];
    let checked = 0;
    for (const page of allPages()) {
      for (const { line, argv } of platformCommands(readFileSync(page, 'utf8'))) {
        const result = await parses(argv);
        checked += 1;
        if (!result.ok) failures.push(`${path.relative(RUNBOOKS, page)}:${line}: platform ${argv.join(' ')}: ${result.error}`);
        else if (result.ran !== 1) failures.push(`${path.relative(RUNBOOKS, page)}:${line}: platform ${argv.join(' ')} selects no command`);
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(40);
  });

  it('would catch a command the CLI does not have, or a misspelt flag', async () => {
    expect(await parses(['dlq', 'purge'])).toMatchObject({ ok: false });
    expect(await parses(['doctor', '--stak', 'prod'])).toMatchObject({ ok: false, error: expect.stringContaining("unknown option '--stak'") });
    expect(await parses(['queues', 'stats', 'extra'])).toMatchObject({ ok: false });
    expect(await parses(['db', 'cancel', '4242', '--terminate'])).toEqual({ ok: true, ran: 1 });
    expect(await parses(['dlq', 'list', '--limit', '5000'])).toEqual({ ok: false, error: '--limit must be a whole number from 1 to 1000, got "5000"' });
    expect(await parses(['jobs', 'show', '$JOB_ID'])).toEqual({ ok: true, ran: 1 });
    expect(platformCommands('text\n```sh\nkubectl -n platform exec deploy/api -- platform queues stats\n```\nplatform outside a block')).toEqual([{ line: 3, argv: ['queues', 'stats'] }]);
  });
});
