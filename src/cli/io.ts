/** The process surface the CLI uses, passed in so tests can drive `main` without a real terminal. */

/** A text stream the CLI writes to (process.stdout/stderr or a test capture). */
export interface CliOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export interface CliIo {
  readonly stdout: CliOutput;
  readonly stderr: CliOutput;
  /** For confirmation prompts; `isTTY` decides whether prompting is allowed. */
  readonly stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Stops `serve` (besides SIGTERM/SIGINT): for tests and embedding. */
  readonly stop?: AbortSignal;
}

/** The real process. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}
