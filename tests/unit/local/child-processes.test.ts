import { spawn } from 'node:child_process';
import { childPidsOf, descendantPidsOf, isProcessAlive } from '../../../services/local/child';

const onLinux = process.platform === 'linux' ? describe : describe.skip;

onLinux('the processes below a process', () => {
  it('finds children and grandchildren, each below its parent, and only those', async () => {
    // A shell that starts a sleeping grandchild and then sleeps itself.
    const child = spawn('sh', ['-c', 'sleep 30 & sleep 30'], { stdio: 'ignore' });
    try {
      let below: number[] = [];
      for (let attempt = 0; attempt < 100 && below.length < 2; attempt += 1) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        below = descendantPidsOf(child.pid!);
      }
      const direct = childPidsOf(child.pid!);
      expect(direct).toHaveLength(2);
      expect(new Set(below)).toEqual(new Set(direct));
      expect(descendantPidsOf(process.pid)).toEqual(expect.arrayContaining([child.pid!, ...direct]));
      const mine = descendantPidsOf(process.pid);
      expect(mine.indexOf(child.pid!)).toBeLessThan(Math.min(...direct.map((pid) => mine.indexOf(pid))));
      expect(descendantPidsOf(direct[0]!)).toEqual([]);
    } finally {
      for (const pid of [...descendantPidsOf(child.pid!), child.pid!]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    await new Promise((resolve) => child.once('exit', resolve));
    expect(isProcessAlive(child.pid!)).toBe(false);
  });
});
