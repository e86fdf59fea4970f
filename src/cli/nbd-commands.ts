/**
 * `stowage nbd …`: create, list, info, resize, unlock, download, upload, delete and
 * import-secrets for block-device volumes. Each opens the object store from the same
 * configuration as `serve` (`--data`/`--config`), does one thing, and closes it.
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { Command } from 'commander';
import { ValidationError } from '../core/errors.js';
import { parseByteSize } from '../core/config.js';
import { breakLease, leaseIsLive, readLatestLease } from '../nbd/device/lease.js';
import { parseSecretsConf } from '../nbd/device/swift-secrets.js';
import type { VolumeRecords } from '../nbd/device/lease-records.js';
import { deleteVolume, downloadVolume, resizeVolume, uploadVolume } from '../nbd/device/volume-transfer.js';
import { checkVolumeName, countBlocks, createVolume, listVolumeNames, readVolumeMeta, requireVolumeMeta } from '../nbd/device/volume-layout.js';
import type { ObjectStore } from '../storage/object-store.js';
import { openBackends, volumeRecordsOf } from './compose.js';
import type { CliIo } from './io.js';
import { addStoreOptions, configFromFlags, type ConfigFlags } from './options.js';
import { createProgress } from './progress.js';

/**
 * Runs `fn` with the object store opened from the command's flags, and where volume lease
 * records live (undefined: the store itself; etcd with --meta etcd://…), closing them afterwards.
 */
async function withStore<T>(flags: ConfigFlags, io: CliIo, fn: (store: ObjectStore, records: VolumeRecords | undefined) => Promise<T>): Promise<T> {
  const config = await configFromFlags(flags, io);
  const backends = await openBackends(config, io.env);
  try {
    return await fn(backends.store, volumeRecordsOf(backends));
  } finally {
    await backends.close();
  }
}

function size(text: string, what: string): number {
  const n = parseByteSize(text);
  if (n === undefined) throw new ValidationError('ARG_INVALID', `bad ${what} ${JSON.stringify(text)}: expected bytes or a size such as 512M or 1G`);
  return n;
}

function cliNodeId(): string {
  return `stowage-cli:${hostname()}:${process.pid}`;
}

/** Volume facts shown by list and info. */
async function describeVolume(store: ObjectStore, name: string, records: VolumeRecords | undefined): Promise<Record<string, unknown>> {
  const meta = await requireVolumeMeta(store, name);
  const { blocks, bytes } = await countBlocks(store, name);
  const lease = await readLatestLease(store, name, records);
  const live = lease !== undefined && leaseIsLive(lease.record, Date.now());
  return {
    name,
    size: meta.size,
    blockSize: meta.blockSize,
    blocksStored: blocks,
    bytesStored: bytes,
    created: meta.created,
    description: meta.description,
    leaseHolder: live ? lease.record.nodeId : null,
    leaseEpoch: lease?.epoch ?? 0,
    leaseExpires: live ? new Date(lease.record.expiresMs).toISOString() : null,
  };
}

/** Builds the `nbd` command and its subcommands. */
export function nbdCommand(io: CliIo): Command {
  const nbd = new Command('nbd').description('manage block-device volumes served over NBD');
  const out = (text: string): void => void io.stdout.write(`${text}\n`);

  addStoreOptions(nbd.command('create <name>').description('create an empty (all-zero) volume'))
    .requiredOption('--size <size>', 'volume size, e.g. 1G or 512M (a multiple of 512)')
    .option('--block-size <size>', 'object size per block, a power of two from 4K to 32M (default 1M)')
    .option('--description <text>', 'a description shown to NBD clients')
    .action(async (name: string, opts: ConfigFlags & { size: string; blockSize?: string; description?: string }) => {
      checkVolumeName(name);
      const bytes = size(opts.size, '--size');
      const blockSize = opts.blockSize === undefined ? undefined : size(opts.blockSize, '--block-size');
      await withStore(opts, io, async (store, records) => {
        const meta = await createVolume(store, name, {
          size: bytes,
          ...(blockSize === undefined ? {} : { blockSize }),
          ...(opts.description === undefined ? {} : { description: opts.description }),
          ...(records === undefined ? {} : { records }),
        });
        out(`created volume ${name}: ${meta.size} bytes, block size ${meta.blockSize}`);
      });
    });

  addStoreOptions(nbd.command('list').description('list volumes: size, blocks stored, lease holder'))
    .option('--json', 'print JSON')
    .action(async (opts: ConfigFlags & { json?: boolean }) => {
      await withStore(opts, io, async (store, records) => {
        const vols = [];
        for (const name of await listVolumeNames(store)) vols.push(await describeVolume(store, name, records));
        if (opts.json === true) {
          out(JSON.stringify(vols));
          return;
        }
        for (const v of vols) out(`${String(v['name'])}\t${String(v['size'])}\t${String(v['blocksStored'])} blocks\t${v['leaseHolder'] === null ? 'free' : `held by ${String(v['leaseHolder'])}`}`);
      });
    });

  addStoreOptions(nbd.command('info <name>').description('show a volume'))
    .option('--json', 'print JSON')
    .action(async (name: string, opts: ConfigFlags & { json?: boolean }) => {
      checkVolumeName(name);
      await withStore(opts, io, async (store, records) => {
        const v = await describeVolume(store, name, records);
        if (opts.json === true) {
          out(JSON.stringify(v));
          return;
        }
        for (const [k, value] of Object.entries(v)) out(`${`${k}:`.padEnd(14)}${value === null ? '-' : String(value)}`);
      });
    });

  addStoreOptions(nbd.command('resize <name>').description('grow a volume'))
    .requiredOption('--size <size>', 'the new size (larger than the current one)')
    .action(async (name: string, opts: ConfigFlags & { size: string }) => {
      checkVolumeName(name);
      const bytes = size(opts.size, '--size');
      await withStore(opts, io, async (store, records) => {
        const meta = await resizeVolume(store, name, bytes, cliNodeId(), records);
        out(`volume ${name} is now ${meta.size} bytes`);
      });
    });

  addStoreOptions(nbd.command('unlock <name>').description('break the lease of a dead server by hand')).action(async (name: string, opts: ConfigFlags) => {
    checkVolumeName(name);
    await withStore(opts, io, async (store, records) => {
      await requireVolumeMeta(store, name);
      const r = await breakLease(store, name, Date.now(), records);
      out(r === undefined ? `volume ${name} was not locked` : `unlocked volume ${name} (was held by ${r.was.nodeId}; now epoch ${r.epoch})`);
    });
  });

  addStoreOptions(nbd.command('download <name> <file>').description('write a volume to a (sparse) image file')).action(
    async (name: string, file: string, opts: ConfigFlags) => {
      checkVolumeName(name);
      await withStore(opts, io, async (store) => {
        const progress = createProgress(io.stderr);
        try {
          const r = await downloadVolume(store, name, file, (done, total) => progress.onProgress('downloading blocks', done, total));
          progress.finish();
          out(`downloaded ${name} to ${file}: ${r.bytes} bytes, ${r.blocks} blocks stored`);
        } finally {
          progress.finish();
        }
      });
    },
  );

  addStoreOptions(nbd.command('upload <file> <name>').description('copy an image file into a volume (created when missing)'))
    .option('--block-size <size>', 'block size if the volume is created')
    .option('--description <text>', 'description if the volume is created')
    .action(async (file: string, name: string, opts: ConfigFlags & { blockSize?: string; description?: string }) => {
      checkVolumeName(name);
      const blockSize = opts.blockSize === undefined ? undefined : size(opts.blockSize, '--block-size');
      await withStore(opts, io, async (store, records) => {
        const progress = createProgress(io.stderr);
        try {
          const r = await uploadVolume(store, file, name, {
            nodeId: cliNodeId(),
            ...(records === undefined ? {} : { records }),
            ...(blockSize === undefined ? {} : { blockSize }),
            ...(opts.description === undefined ? {} : { description: opts.description }),
            onProgress: (done, total) => progress.onProgress('uploading blocks', done, total),
          });
          progress.finish();
          out(`uploaded ${file} to ${r.created ? 'new ' : ''}volume ${name}: ${r.size} bytes, ${r.stored} blocks stored`);
        } finally {
          progress.finish();
        }
      });
    });

  addStoreOptions(nbd.command('delete <name>').description('delete a volume and all its blocks'))
    .option('--yes', 'do not ask for confirmation')
    .action(async (name: string, opts: ConfigFlags & { yes?: boolean }) => {
      checkVolumeName(name);
      if (opts.yes !== true) throw new ValidationError('ARG_INVALID', `refusing to delete volume ${name} without --yes`);
      await withStore(opts, io, async (store, records) => {
        const r = await deleteVolume(store, name, Date.now(), records);
        out(`deleted volume ${name} (${r.blocks} blocks)`);
      });
    });

  addStoreOptions(nbd.command('import-secrets <file>').description("create volumes named by a swiftnbd secrets.conf's sections"))
    .option('--size <size>', 'size for sections without a size or objects key')
    .action(async (file: string, opts: ConfigFlags & { size?: string }) => {
      const defs = parseSecretsConf(await readFile(file, 'utf8'));
      await withStore(opts, io, async (store, records) => {
        for (const d of defs) {
          checkVolumeName(d.name);
          if ((await readVolumeMeta(store, d.name)) !== undefined) {
            out(`${d.name}: exists`);
            continue;
          }
          // swiftnbd counts 64 KiB objects; keep its layout for such volumes.
          const bytes = d.size !== undefined ? size(d.size, `size of [${d.name}]`) : d.objects !== undefined ? d.objects * 65536 : opts.size !== undefined ? size(opts.size, '--size') : undefined;
          if (bytes === undefined) {
            out(`${d.name}: skipped (no size or objects key; pass --size)`);
            continue;
          }
          const blockSize = d.blockSize !== undefined ? size(d.blockSize, `block-size of [${d.name}]`) : d.objects !== undefined ? 65536 : undefined;
          const meta = await createVolume(store, d.name, {
            size: bytes,
            ...(blockSize === undefined ? {} : { blockSize }),
            ...(d.description === undefined ? {} : { description: d.description }),
            ...(records === undefined ? {} : { records }),
          });
          out(`${d.name}: created, ${meta.size} bytes, block size ${meta.blockSize}`);
        }
      });
    });

  return nbd;
}
