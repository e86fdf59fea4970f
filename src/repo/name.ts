/**
 * Repository names: the only door through which a name from the network (a URL path, a
 * git-daemon request, an SSH command, an API body) reaches the catalog. A name is one or
 * more '/'-separated components of [A-Za-z0-9._-]; a component never starts with '.' (no
 * hidden names, no '.' or '..') or '-' (never mistaken for an option by a tool), contains
 * no '..' and, once the optional trailing '.git' is stripped, does not end with '.git'.
 */
import { ValidationError } from '../core/errors.js';
import { REPO_NAME_COMPONENT_MAX, REPO_NAME_MAX } from '../core/limits.js';

const COMPONENT_RE = /^[A-Za-z0-9._-]+$/;

function bad(name: string, why: string): ValidationError {
  // Only printable ASCII of the input is echoed, and only a bounded prefix of it.
  const shown = JSON.stringify(name.slice(0, 64)).replace(/[^\x20-\x7e]/g, '?');
  return new ValidationError('REPO_BAD_NAME', `invalid repository name ${shown}: ${why}`);
}

/** Returns why `name` (already normalized) is not a valid repository name, or undefined. */
function problem(name: string): string | undefined {
  if (name.length === 0) return 'it is empty';
  if (name.length > REPO_NAME_MAX) return `it is longer than ${REPO_NAME_MAX} characters`;
  if (name.endsWith('/')) return 'it ends with "/"';
  if (name.startsWith('/')) return 'it starts with "//"';
  for (const part of name.split('/')) {
    if (part.length === 0) return 'it has an empty component ("//")';
    if (part.length > REPO_NAME_COMPONENT_MAX) {
      return `a component is longer than ${REPO_NAME_COMPONENT_MAX} characters`;
    }
    if (!COMPONENT_RE.test(part)) {
      return 'components may only contain letters, digits, ".", "_" and "-"';
    }
    if (part.startsWith('.')) return 'a component starts with "." (this also refuses "." and "..")';
    if (part.startsWith('-')) return 'a component starts with "-"';
    if (part.includes('..')) return 'it contains ".."';
    // After the one trailing ".git" is stripped, another would make two names for one URL.
    if (part.toLowerCase().endsWith('.git')) return 'a component ends with ".git"';
  }
  return undefined;
}

/**
 * Normalizes and checks a repository name: strips one leading '/' and one trailing '.git'
 * (so `/team/app.git` and `team/app` name the same repository), then applies the rules
 * above and the limits of core/limits.ts. Throws ValidationError('REPO_BAD_NAME').
 */
export function checkRepoName(name: string): string {
  let n = name;
  if (n.startsWith('/')) n = n.slice(1);
  if (n.endsWith('.git')) n = n.slice(0, -4);
  const why = problem(n);
  if (why !== undefined) throw bad(name, why);
  return n;
}

/** True if checkRepoName accepts `name`. */
export function isValidRepoName(name: string): boolean {
  try {
    checkRepoName(name);
    return true;
  } catch {
    return false;
  }
}
