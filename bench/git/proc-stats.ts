/**
 * Server cost from Linux /proc (proc(5)).
 *
 * CPU: fields 14-17 of /proc/<pid>/stat are utime, stime, cutime, cstime in clock ticks. cutime
 * and cstime hold the times of children the process has waited for, including what those
 * children had collected from their own waited-for children. So once a server has reaped every
 * child, utime+stime+cutime+cstime is its whole CPU cost, forks included. git daemon forks a
 * child per connection, which waits for upload-pack/receive-pack, which wait for pack-objects
 * and index-pack; the daemon reaps its children, so nothing is missed once it has no children.
 *
 * Peak RSS: VmHWM in /proc/<pid>/status, the process's resident high-water mark. Writing "5" to
 * /proc/<pid>/clear_refs resets it (Linux 4.0+), so the peak of one operation can be read from a
 * long-running process.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

let ticks: number | undefined;

/** Clock ticks per second (getconf CLK_TCK; 100 on Linux in practice). */
export function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/** Fields of /proc/<pid>/stat after the command name (field 3 is index 0). */
function statFields(pid: number): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // the command name (field 2) is in parentheses and may contain spaces or parentheses
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/** CPU seconds of a process including its reaped descendants; undefined if it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  const f = statFields(pid);
  if (f === undefined) return undefined;
  // utime, stime, cutime, cstime are fields 14..17, i.e. indexes 11..14 here
  const sum = [11, 12, 13, 14].reduce((s, i) => s + Number(f[i] ?? 0), 0);
  return sum / clockTicks();
}

/**
 * CPU seconds of this process's reaped children so far (cutime + cstime of /proc/self/stat):
 * around a client command, the CPU of that command and everything it ran and waited for
 * (git fetch's index-pack and rev-list). Undefined off Linux.
 */
export function reapedChildrenCpuSeconds(): number | undefined {
  const f = statFields(process.pid);
  if (f === undefined) return undefined;
  return (Number(f[13] ?? 0) + Number(f[14] ?? 0)) / clockTicks();
}

/**
 * Busy CPU seconds of the whole machine so far (all CPUs: user, nice, system, irq, softirq and
 * steal of /proc/stat's `cpu` line), and how many CPUs it has; undefined off Linux.
 */
export function machineCpu(): { readonly busySeconds: number; readonly cpus: number } | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/stat', 'latin1');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  const total = lines[0]?.split(/\s+/) ?? [];
  if (total[0] !== 'cpu') return undefined;
  // user nice system idle iowait irq softirq steal: everything but idle and iowait
  const busy = [1, 2, 3, 6, 7, 8].reduce((sum, i) => sum + Number(total[i] ?? 0), 0);
  const cpus = lines.filter((l) => /^cpu\d+ /.test(l)).length;
  return { busySeconds: busy / clockTicks(), cpus };
}

/** Direct children of a process (zombies included), by scanning /proc for their parent id. */
export function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    // ppid is field 4, index 1 here
    if (f !== undefined && Number(f[1]) === pid) kids.push(Number(name));
  }
  return kids;
}

/** Waits until a process has no children (so their CPU time is in its cutime/cstime). */
export async function waitChildless(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (childrenOf(pid).length === 0) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/**
 * Waits until a process has used no more than one clock tick of CPU over `quietMs` (its
 * background work, e.g. a compaction a push started, is over), at most `timeoutMs`. Returns
 * the CPU seconds it used while waited for.
 */
export async function waitIdle(pid: number, quietMs = 300, timeoutMs = 60_000): Promise<number> {
  const start = cpuSeconds(pid);
  if (start === undefined) return 0;
  const deadline = Date.now() + timeoutMs;
  // CPU up to the end of the last busy interval: the quiet one that ends the wait is not counted
  let last = start;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, quietMs));
    const now = cpuSeconds(pid);
    if (now === undefined || now - last <= 1.5 / clockTicks()) break;
    last = now;
  }
  return last - start;
}

/** VmHWM (peak resident set) of a process in bytes; undefined if it is gone. */
export function peakRssBytes(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m === null ? undefined : Number(m[1]) * 1024;
  } catch {
    return undefined;
  }
}

/** Resets a process's VmHWM to its current RSS; false if the kernel refused. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** One line about the CPU, for the report. */
export function cpuModel(): string {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const model = /^model name\s*:\s*(.+)$/m.exec(info)?.[1] ?? 'unknown CPU';
    const count = (info.match(/^processor\s*:/gm) ?? []).length;
    return `${model.trim()}, ${count} logical CPUs`;
  } catch {
    return 'unknown CPU';
  }
}
