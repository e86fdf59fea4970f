/**
 * The end-to-end suite: stock git against a running Stowage, the same scenarios for every
 * frontend and protocol version (like dulwich's ServerTests). Each test file calls
 * defineServerScenarios once; each gets its own server and data dir.
 */
import { after, before, describe } from 'node:test';
import { startServer, type Frontend } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';
import { E2E_SERVER_CONFIG, E2eContext, type SuiteProtocol } from './context.js';
import { fetchScenarios } from './scenarios-fetch.js';
import { hostileScenarios } from './scenarios-hostile.js';
import { pushScenarios } from './scenarios-push.js';
import { storeScenarios } from './scenarios-store.js';

/** Registers the whole suite for one frontend and protocol version. */
export function defineServerScenarios(frontend: Frontend, protocol: SuiteProtocol, opts: { skip?: string } = {}): void {
  const store = process.env['STOWAGE_STORE']?.replace(/:.*/, '');
  const on = store === undefined ? '' : ` on ${store}`;
  describe(`stock git over ${frontend === 'git' ? 'git://' : 'HTTP'}, protocol v${protocol}${on}`, opts, () => {
    const ctx = new E2eContext(frontend, protocol);
    before(async () => {
      const server = await startServer({ config: E2E_SERVER_CONFIG });
      ctx.attach(server, await makeTempDir(`stowage-e2e-${frontend}-v${protocol}-`));
    });
    after(async () => {
      try {
        await ctx.server.stop();
      } catch {
        // before() failed: nothing to stop
      }
    });
    fetchScenarios(ctx);
    pushScenarios(ctx);
    hostileScenarios(ctx);
    storeScenarios(ctx);
  });
}
