/**
 * Person identities in commit and tag headers: `Name <email> 1234567890 +0200`.
 * Parsing is lenient (like git's split_ident_line); fsck does the strict check on raw bytes.
 */

/** Who and when: author, committer or tagger. */
export interface Ident {
  readonly name: string;
  readonly email: string;
  /** Seconds since the epoch; 0 when the line carries no parsable date. */
  readonly timestamp: number;
  /** Offset as written, e.g. "+0200"; "+0000" when absent. */
  readonly tz: string;
}


/**
 * Splits an ident line (the header value, without the key) leniently: the name is what precedes
 * the first '<', the email runs to the next '>', the date follows the last '>'. Returns undefined
 * when there is no `<…>` at all.
 */
export function parseIdent(line: string): Ident | undefined {
  const lt = line.indexOf('<');
  if (lt < 0) return undefined;
  const gt = line.indexOf('>', lt + 1);
  if (gt < 0) return undefined;
  const name = line.slice(0, lt).trim();
  const email = line.slice(lt + 1, gt);
  // git looks for the date after the last '>' to survive broken emails with an extra '>'.
  const lastGt = line.lastIndexOf('>');
  const rest = line.slice(lastGt + 1).trim();
  let timestamp = 0;
  let tz = '+0000';
  const m = /^(\d+)(?:\s+([+-]\d+))?/.exec(rest);
  if (m !== null) {
    const t = Number(m[1]);
    timestamp = Number.isSafeInteger(t) ? t : 0;
    if (m[2] !== undefined) tz = m[2];
  }
  return { name, email, timestamp, tz };
}

/** Formats an ident as git writes it: `Name <email> <seconds> <tz>` (tz written as given). */
export function formatIdent(i: Ident): string {
  return `${i.name} <${i.email}> ${i.timestamp} ${i.tz}`;
}
