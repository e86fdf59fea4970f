/**
 * The contract between frontends (git daemon, smart HTTP, SSH) and the Git services.
 * A frontend unwraps its transport into a GitRequest plus a byte stream in and a sink out;
 * the service runs the pack protocol over them. Errors before the first byte of output are
 * thrown (typed) for the frontend to map (ERR pkt-line, HTTP status, SSH stderr); once the
 * conversation has begun, protocol-level failures are part of the protocol (report-status
 * `ng`, side-band 3) and the service writes them itself.
 */

export type GitServiceName = 'git-upload-pack' | 'git-receive-pack' | 'git-upload-archive';

export type ProtocolVersion = 0 | 1 | 2;

export interface GitRequest {
  readonly service: GitServiceName;
  /** Repository name as the client sent it; the service validates it. */
  readonly repoName: string;
  readonly protocolVersion: ProtocolVersion;
  /** Smart HTTP: each request is one round (no state kept between requests). */
  readonly statelessRpc: boolean;
  /** Smart HTTP info/refs: only advertise, then stop. */
  readonly advertiseRefs: boolean;
  /** Identifies the connection in logs. */
  readonly requestId: string;
  readonly signal?: AbortSignal;
}

/** Where a service writes its response; `write` resolves when the bytes are accepted (backpressure). */
export interface ByteSink {
  /** Resolves when the sink can take more; it may still hold `chunk` (see settled). */
  write(chunk: Uint8Array): Promise<void>;
  /** Resolves once the sink holds none of the chunks written so far (handed to the OS). */
  settled?(): Promise<void>;
}

export interface GitService {
  /** Runs one request to completion. */
  serve(req: GitRequest, input: AsyncIterable<Uint8Array>, output: ByteSink): Promise<void>;
}
