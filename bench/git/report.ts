/** The benchmark's markdown report: medians side by side, ratios, and how each was measured. */

/** One measured run on one server. */
export interface Measured {
  readonly wallSeconds: number;
  readonly cpuSeconds: number;
  readonly peakRssBytes: number;
  /** False when the peak could not be reset before the run (then it is the process's lifetime peak). */
  readonly exactPeak: boolean;
}

/** All runs of one operation on both servers. */
export interface OperationResult {
  readonly name: string;
  readonly stowage: readonly Measured[];
  readonly daemon: readonly Measured[];
}

/** Where and how the numbers were taken. */
export interface ReportContext {
  readonly repository: string;
  readonly machine: string;
  readonly runs: number;
  readonly protocol: number;
  /** The concurrent-clients row: its name and client count, for the throughput line. */
  readonly concurrent?: { readonly name: string; readonly clients: number };
}

/** The median of non-empty values (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function fixed(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : 'n/a';
}

function ratio(a: number, b: number): string {
  return b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}×` : 'n/a';
}

const MIB = 1024 * 1024;

/** The report as markdown. */
export function formatReport(results: readonly OperationResult[], ctx: ReportContext): string {
  const out: string[] = [];
  out.push('## Git: Stowage vs git daemon', '');
  out.push(`- Repository: ${ctx.repository}`);
  out.push(`- Machine: ${ctx.machine}`);
  out.push(`- Client: stock git over git:// on 127.0.0.1, protocol.version=${ctx.protocol} (push always uses v0); median of ${ctx.runs} run(s)`);
  out.push('');
  out.push('| operation | wall s Stowage | wall s git daemon | wall ratio | server CPU s Stowage | server CPU s git daemon | CPU ratio | peak RSS MiB Stowage | peak RSS MiB git daemon | RSS ratio |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  let inexact = false;
  for (const r of results) {
    const m = (side: readonly Measured[], key: 'wallSeconds' | 'cpuSeconds' | 'peakRssBytes'): number => median(side.map((x) => x[key]));
    const sw = m(r.stowage, 'wallSeconds');
    const dw = m(r.daemon, 'wallSeconds');
    const sc = m(r.stowage, 'cpuSeconds');
    const dc = m(r.daemon, 'cpuSeconds');
    const sr = m(r.stowage, 'peakRssBytes') / MIB;
    const dr = m(r.daemon, 'peakRssBytes') / MIB;
    const mark = r.stowage.every((x) => x.exactPeak) ? '' : ' (lifetime)';
    inexact ||= mark !== '';
    out.push(
      `| ${r.name} | ${fixed(sw, 2)} | ${fixed(dw, 2)} | ${ratio(sw, dw)} | ${fixed(sc, 2)} | ${fixed(dc, 2)} | ${ratio(sc, dc)} | ${fixed(sr, 1)}${mark} | ${fixed(dr, 1)} | ${ratio(sr, dr)} |`,
    );
  }
  const conc = ctx.concurrent === undefined ? undefined : results.find((r) => r.name === ctx.concurrent!.name);
  if (conc !== undefined && ctx.concurrent !== undefined) {
    const n = ctx.concurrent.clients;
    const s = n / median(conc.stowage.map((x) => x.wallSeconds));
    const d = n / median(conc.daemon.map((x) => x.wallSeconds));
    out.push('');
    out.push(`Concurrent clients: throughput ${fixed(s, 1)} clients/s Stowage, ${fixed(d, 1)} clients/s git daemon (Stowage / git daemon = ${fixed(s / d, 2)}×).`);
  }
  out.push('');
  out.push('How it is measured (`npm run bench`, bench/git/):');
  out.push('- Wall: the client command, from start to exit.');
  out.push('- Stowage: one long-running `stowage serve` (the repository imported with `stowage repo import`); server CPU is the');
  out.push('  change of utime+stime+cutime+cstime in /proc/<pid>/stat over the run; peak RSS is VmHWM from /proc/<pid>/status,');
  out.push('  reset before each run by writing 5 to /proc/<pid>/clear_refs.');
  out.push('- git daemon: a fresh `git daemon --export-all --enable=receive-pack` per run, serving a local bare clone, run under');
  out.push('  GNU time after its children are reaped: CPU is user+system of the daemon and every process it forked (per-connection');
  out.push('  child, upload-pack/receive-pack, pack-objects/index-pack); peak RSS is wait4\'s ru_maxrss, the largest of those processes.');
  if (inexact) out.push('- "(lifetime)": the kernel refused to reset VmHWM, so that figure is the server\'s peak since it started.');
  out.push('');
  return `${out.join('\n')}\n`;
}
