import { readFileSync, readdirSync } from 'node:fs';

/** CPU and memory of processes, read from /proc (Linux): what each part of the platform costs. */

const CLOCK_TICKS_PER_SECOND = 100;

interface ProcStat {
  pid: number;
  ppid: number;
  cpuSeconds: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; everything after its closing parenthesis is space-separated.
    const fields = raw.slice(raw.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(fields[1]), cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

/** The process and all its descendants (PostgreSQL backends, cluster workers). */
export function processTree(root: number): number[] {
  const stats = readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map((entry) => readStat(Number(entry)))
    .filter((stat): stat is ProcStat => stat !== undefined);
  const tree = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const stat of stats) {
      if (!tree.has(stat.pid) && tree.has(stat.ppid)) {
        tree.add(stat.pid);
        grew = true;
      }
    }
  }
  return [...tree];
}

export function cpuSeconds(root: number): number {
  return processTree(root).reduce((total, pid) => total + (readStat(pid)?.cpuSeconds ?? 0), 0);
}

/** Resident set size in MiB of the process and its descendants. */
export function rssMiB(root: number): number {
  let kib = 0;
  for (const pid of processTree(root)) {
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      kib += Number(match?.[1] ?? 0);
    } catch {
      // exited between listing and reading
    }
  }
  return kib / 1024;
}

/** Follows CPU use of named process trees over a window, and the peak RSS of each. */
export class ResourceMonitor {
  private readonly start = new Map<string, number>();
  private readonly peakRss = new Map<string, number>();
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly roots: Record<string, number>) {}

  begin(): void {
    this.startedAt = performance.now();
    for (const [name, pid] of Object.entries(this.roots)) this.start.set(name, cpuSeconds(pid));
    this.timer = setInterval(() => this.sampleRss(), 500);
    this.sampleRss();
  }

  /** Cores used per process over the window (1.0 = one core saturated) and peak RSS. */
  end(): Record<string, { cores: number; peakRssMiB: number }> {
    clearInterval(this.timer);
    this.sampleRss();
    const seconds = (performance.now() - this.startedAt) / 1_000;
    const report: Record<string, { cores: number; peakRssMiB: number }> = {};
    for (const [name, pid] of Object.entries(this.roots)) {
      report[name] = { cores: (cpuSeconds(pid) - (this.start.get(name) ?? 0)) / seconds, peakRssMiB: this.peakRss.get(name) ?? 0 };
    }
    return report;
  }

  private sampleRss(): void {
    for (const [name, pid] of Object.entries(this.roots)) {
      this.peakRss.set(name, Math.max(this.peakRss.get(name) ?? 0, rssMiB(pid)));
    }
  }
}

/** The machine's CPU time counters since boot, in clock ticks (the `cpu` line of /proc/stat). */
export interface MachineCpu {
  total: number;
  steal: number;
}

export function machineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
  return { total: fields.reduce((sum, value) => sum + value, 0), steal: fields[7] ?? 0 };
}

/**
 * Share of the machine's CPU time the hypervisor gave to other guests between two readings.
 * On a shared VM this is why the same run is slower one minute than the next; a figure
 * measured while it was high is low for reasons outside the code.
 */
export function stolenShare(from: MachineCpu, to: MachineCpu): number {
  const total = to.total - from.total;
  return total > 0 ? (to.steal - from.steal) / total : 0;
}
