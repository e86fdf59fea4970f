#!/usr/bin/env node
// The stowage command: runs the compiled CLI (npm run build first).
// The AWS SDK warns on every start under Node 20 about its future Node 22 requirement; the
// engines field and README say what Node we need, so the warning is off unless asked for.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { main } = await import('../dist/src/cli/main.js');

process.exitCode = await main(process.argv.slice(2));
