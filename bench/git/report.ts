/** The benchmark's markdown report: medians side by side, ratios, and how each was measured. */

/** One measured run on one server. */
export interface Measured {
  readonly wallSeconds: number;
  readonly cpuSeconds: number;
  readonly peakRssBytes: number;
  /** False when the peak could not be reset before the run (then it is the process's lifetime peak). */
  readonly exactPeak: boolean;
  /**
   * CPU seconds the server used after the operation returned until it was idle again (work the
   * operation started in the background, e.g. a compaction after a push); part of cpuSeconds.
   */
  readonly afterCpuSeconds?: number;
  /** CPU seconds of the store's own services (Swift servers, etcd) over the run, when known. */
  readonly storeCpuSeconds?: number;
  /** Busy CPU seconds of the whole machine over the run (server, clients, everything), when known. */
  readonly machineCpuSeconds?: number;
  /** CPUs of the machine, when known. */
  readonly cpus?: number;
  /** CPU seconds of the client commands of the run (the git processes the benchmark ran), when known. */
  readonly clientCpuSeconds?: number;
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
  /** The backend's name and where Stowage kept its data. */
  readonly backend?: { readonly name: string; readonly description: string; readonly importSeconds: number };
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

/** Median store-services CPU of the runs that have it (NaN if none). */
function storeCpu(runs: readonly Measured[]): number {
  return median(runs.flatMap((x) => (x.storeCpuSeconds === undefined ? [] : [x.storeCpuSeconds])));
}

/** The report as markdown. */
export function formatReport(results: readonly OperationResult[], ctx: ReportContext): string {
  const out: string[] = [];
  out.push(`## Git: Stowage${ctx.backend === undefined ? '' : ` on ${ctx.backend.name}`} vs git daemon`, '');
  out.push(`- Repository: ${ctx.repository}`);
  if (ctx.backend !== undefined) {
    out.push(`- Store: ${ctx.backend.description}; \`stowage repo import\` took ${fixed(ctx.backend.importSeconds, 2)} s`);
  }
  out.push(`- Machine: ${ctx.machine}`);
  out.push(`- Client: stock git over git:// on 127.0.0.1, protocol.version=${ctx.protocol} (push always uses v0); median of ${ctx.runs} run(s)`);
  out.push('');
  const withStore = results.some((r) => r.stowage.some((x) => x.storeCpuSeconds !== undefined));
  const storeHead = withStore ? ' store services CPU s |' : '';
  out.push(`| operation | wall s Stowage | wall s git daemon | wall ratio | server CPU s Stowage |${storeHead} server CPU s git daemon | CPU ratio | peak RSS MiB Stowage | peak RSS MiB git daemon | RSS ratio |`);
  out.push(`| --- | ---: | ---: | ---: | ---: |${withStore ? ' ---: |' : ''} ---: | ---: | ---: | ---: | ---: |`);
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
      `| ${r.name} | ${fixed(sw, 2)} | ${fixed(dw, 2)} | ${ratio(sw, dw)} | ${fixed(sc, 2)} |${withStore ? ` ${fixed(storeCpu(r.stowage), 2)} |` : ''} ${fixed(dc, 2)} | ${ratio(sc, dc)} | ${fixed(sr, 1)}${mark} | ${fixed(dr, 1)} | ${ratio(sr, dr)} |`,
    );
  }
  const clientCpu = (xs: readonly Measured[]): number | undefined => {
    const c = xs.flatMap((x) => (x.clientCpuSeconds === undefined ? [] : [x.clientCpuSeconds]));
    return c.length === xs.length && c.length > 0 ? median(c) : undefined;
  };
  const clientCells = results.flatMap((r) => {
    const sc = clientCpu(r.stowage);
    const dc = clientCpu(r.daemon);
    return sc === undefined || dc === undefined ? [] : [`${r.name} ${fixed(sc, 2)} / ${fixed(dc, 2)} s`];
  });
  if (clientCells.length > 0) {
    out.push('');
    out.push(`CPU of the git client commands alone (medians, against Stowage / against git daemon: work in every run that no server can remove): ${clientCells.join('; ')}.`);
  }
  const conc = ctx.concurrent === undefined ? undefined : results.find((r) => r.name === ctx.concurrent!.name);
  if (conc !== undefined && ctx.concurrent !== undefined) {
    const n = ctx.concurrent.clients;
    const s = n / median(conc.stowage.map((x) => x.wallSeconds));
    const d = n / median(conc.daemon.map((x) => x.wallSeconds));
    out.push('');
    out.push(`Concurrent clients: throughput ${fixed(s, 1)} clients/s Stowage, ${fixed(d, 1)} clients/s git daemon (Stowage / git daemon = ${fixed(s / d, 2)}×).`);
    const share = (xs: readonly Measured[]): string | undefined => {
      const m = xs.flatMap((x) => (x.machineCpuSeconds === undefined || x.cpus === undefined ? [] : [x]));
      if (m.length !== xs.length || m.length === 0) return undefined;
      const busy = median(m.map((x) => x.machineCpuSeconds as number));
      const server = median(m.map((x) => x.cpuSeconds));
      const capacity = median(m.map((x) => x.wallSeconds * (x.cpus as number)));
      return `server ${fixed((server / n) * 1000, 1)} ms CPU per client; the machine was ${fixed((busy / capacity) * 100, 0)}% busy, ${fixed(((busy - server) / capacity) * 100, 0)}% outside the server (the git clients, mostly)`;
    };
    const ss = share(conc.stowage);
    const ds = share(conc.daemon);
    if (ss !== undefined && ds !== undefined) out.push(`Where the CPU went: Stowage: ${ss}. git daemon: ${ds}.`);
    const bound = cpuBound(conc, n);
    if (bound !== undefined) out.push(bound);
  }
  out.push('');
  out.push('How it is measured (`npm run bench`, bench/git/):');
  out.push('- Wall: the client command, from start to exit.');
  out.push('- Stowage: one long-running `stowage serve` (the repository imported with `stowage repo import`); server CPU is the');
  out.push('  change of utime+stime+cutime+cstime in /proc/<pid>/stat over the run; peak RSS is VmHWM from /proc/<pid>/status,');
  out.push('  reset before each run by writing 5 to /proc/<pid>/clear_refs. Each run starts once the server is idle (no');
  out.push('  more than one clock tick of CPU in 300 ms), and its CPU includes the background work it left (such as a');
  out.push('  compaction after a push) until the server is idle again.');
  out.push('- git daemon: a fresh `git daemon --export-all --enable=receive-pack` per run, serving a local bare clone, run under');
  out.push('  GNU time after its children are reaped: CPU is user+system of the daemon and every process it forked (per-connection');
  out.push('  child, upload-pack/receive-pack, pack-objects/index-pack); peak RSS is wait4\'s ru_maxrss, the largest of those processes.');
  if (withStore) {
    out.push('- Store services CPU: the change of utime+stime (/proc/<pid>/stat) of the Swift servers (proxy, account, container,');
    out.push('  object) and etcd that the benchmark started, over the same run (memcached not counted). Not in the CPU ratio.');
  }
  if (inexact) out.push('- "(lifetime)": the kernel refused to reset VmHWM, so that figure is the server\'s peak since it started.');
  out.push('');
  return `${out.join('\n')}\n`;
}

/** One backend's rows, for the comparison across backends. */
export interface BackendResults {
  readonly name: string;
  readonly results: readonly OperationResult[];
}

/**
 * Each remote backend against the fs backend and against git daemon (the daemon runs measured
 * beside that backend's own runs): wall time and Stowage's CPU, medians.
 */
export function formatComparison(backends: readonly BackendResults[]): string {
  const fs = backends.find((b) => b.name === 'fs');
  const remotes = backends.filter((b) => b !== fs);
  if (remotes.length === 0) return '';
  const names = (backends[0]?.results ?? []).map((r) => r.name);
  const pick = (b: BackendResults, op: string): OperationResult | undefined => b.results.find((r) => r.name === op);
  const med = (runs: readonly Measured[] | undefined, key: 'wallSeconds' | 'cpuSeconds'): number => (runs === undefined ? Number.NaN : median(runs.map((x) => x[key])));
  const out: string[] = ['## Git: remote stores against fs and git daemon', ''];
  for (const key of ['wallSeconds', 'cpuSeconds'] as const) {
    const what = key === 'wallSeconds' ? 'wall s' : 'Stowage CPU s';
    const head = ['operation', ...backends.map((b) => `${what} ${b.name}`)];
    if (key === 'cpuSeconds') head.push(...remotes.map((b) => `store services CPU s ${b.name}`));
    if (fs !== undefined) head.push(...remotes.map((b) => `${b.name} / fs`));
    head.push(...remotes.map((b) => `${b.name} / git daemon`));
    out.push(`| ${head.join(' | ')} |`, `| --- |${' ---: |'.repeat(head.length - 1)}`);
    for (const op of names) {
      const cells = [op, ...backends.map((b) => fixed(med(pick(b, op)?.stowage, key), 2))];
      if (key === 'cpuSeconds') cells.push(...remotes.map((b) => fixed(storeCpu(pick(b, op)?.stowage ?? []), 2)));
      if (fs !== undefined) cells.push(...remotes.map((b) => ratio(med(pick(b, op)?.stowage, key), med(pick(fs, op)?.stowage, key))));
      cells.push(...remotes.map((b) => ratio(med(pick(b, op)?.stowage, key), med(pick(b, op)?.daemon, key))));
      out.push(`| ${cells.join(' | ')} |`);
    }
    out.push('');
  }
  out.push('"/ git daemon" divides by the git daemon runs measured beside that backend (its own table); CPU ratios count');
  out.push("Stowage's process only, not the store services.");
  out.push('');
  return `${out.join('\n')}\n`;
}

/**
 * When both rounds kept the machine at least 90% busy, throughput is bounded by CPU per client:
 * git daemon's round used `all` ms of the machine per client, and Stowage's clients alone
 * (everything outside its server) `outside` ms. A server using no CPU at all would then reach at
 * most all / outside times git daemon's throughput on this machine; undefined otherwise.
 */
function cpuBound(conc: OperationResult, n: number): string | undefined {
  const busy = (xs: readonly Measured[]): { busy: number; server: number; share: number } | undefined => {
    const m = xs.flatMap((x) => (x.machineCpuSeconds === undefined || x.cpus === undefined ? [] : [x]));
    if (m.length !== xs.length || m.length === 0) return undefined;
    const b = median(m.map((x) => x.machineCpuSeconds as number));
    return { busy: b, server: median(m.map((x) => x.cpuSeconds)), share: b / median(m.map((x) => x.wallSeconds * (x.cpus as number))) };
  };
  const s = busy(conc.stowage);
  const d = busy(conc.daemon);
  if (s === undefined || d === undefined || s.share < 0.9 || d.share < 0.9 || s.busy <= s.server) return undefined;
  const all = (d.busy / n) * 1000;
  const outside = ((s.busy - s.server) / n) * 1000;
  return (
    `Bound on this machine: both rounds were CPU-bound; git daemon's took ${fixed(all, 1)} ms of machine CPU per client and Stowage's clients alone ` +
    `${fixed(outside, 1)} ms, so even a server using no CPU would reach at most ${fixed(all / outside, 2)}× git daemon's throughput here.`
  );
}

