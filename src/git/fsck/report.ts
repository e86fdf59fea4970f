/** Collects fsck findings for one object under a severity configuration, as git's report(). */
import type { ObjectId } from '../hash/object-id.js';
import { fsckSeverity, type FsckConfig } from './config.js';
import type { FsckMsgId } from './msg-ids.js';

/** One finding. `message` is git's text without the id prefix (print as `${id}: ${message}`). */
export interface FsckMessage {
  readonly id: FsckMsgId;
  /** Fatal ids are errors; info ids are reported as warnings, as git does. */
  readonly severity: 'error' | 'warn';
  readonly oid: ObjectId;
  readonly message: string;
}

/** Accumulates messages for one object. */
export class FsckReporter {
  readonly messages: FsckMessage[] = [];

  constructor(
    private readonly oid: ObjectId,
    private readonly config: FsckConfig | undefined,
  ) {}

  /**
   * Records `id` unless it is ignored; returns true when it counts as an error, which is when
   * git's checks stop looking at the rest of a commit or tag.
   */
  report(id: FsckMsgId, message: string): boolean {
    const sev = fsckSeverity(id, this.config);
    if (sev === 'ignore') return false;
    // git's fsck_vreport: info is shown as a warning (it is only exempt from --strict).
    const severity = sev === 'error' ? 'error' : 'warn';
    this.messages.push({ id, severity, oid: this.oid, message });
    return severity === 'error';
  }
}

