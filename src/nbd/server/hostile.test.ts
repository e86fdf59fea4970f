/**
 * Hostile and broken clients over raw TCP: bad magic, unknown options, oversized lengths,
 * out-of-range offsets, unknown commands, a client vanishing mid-WRITE. Each is answered as the
 * spec says, and a well-behaved client on the same server keeps working throughout.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import * as K from '../protocol/constants.js';
import { decodeOptionReply, encodeClientFlags, encodeOption } from '../protocol/handshake.js';
import { encodeInfoRequest, encodeMetaContextRequest } from '../protocol/option-data.js';
import { decodeReply, type Reply } from '../protocol/reply.js';
import { encodeRequest, type NbdRequest } from '../protocol/request.js';
import { ByteInput } from './byte-input.js';
import { startHarness, type Harness } from './testing/harness.js';

class Raw {
  readonly input: ByteInput;
  private constructor(readonly socket: Socket) {
    this.input = new ByteInput(socket);
    socket.on('error', () => undefined);
  }
  static async open(port: number): Promise<Raw> {
    const s = connect({ host: '127.0.0.1', port });
    await once(s, 'connect');
    const r = new Raw(s);
    assert.ok(await r.input.read(18), 'greeting');
    return r;
  }
  send(b: Uint8Array): void {
    this.socket.write(b);
  }
  async optionReply(): Promise<{ option: number; type: number; data: Buffer }> {
    const head = await this.input.read(K.OPTION_REPLY_HEADER_LENGTH);
    assert.ok(head, 'connection closed before an option reply');
    const len = head.readUInt32BE(16);
    const data = len === 0 ? Buffer.alloc(0) : await this.input.read(len);
    assert.ok(data);
    const step = decodeOptionReply(Buffer.concat([head, data]));
    assert.equal(step.kind, 'reply');
    return step.kind === 'reply' ? { option: step.option, type: step.type, data: Buffer.from(step.data) } : assert.fail();
  }
  /** Handshake to transmission via GO; `structured` negotiates structured replies and base:allocation. */
  async go(name: string, structured: boolean): Promise<void> {
    this.send(encodeClientFlags(3));
    if (structured) {
      this.send(encodeOption(K.NBD_OPT_STRUCTURED_REPLY));
      assert.equal((await this.optionReply()).type, K.NBD_REP_ACK);
      this.send(encodeOption(K.NBD_OPT_SET_META_CONTEXT, encodeMetaContextRequest({ name, queries: [K.BASE_ALLOCATION] })));
      assert.equal((await this.optionReply()).type, K.NBD_REP_META_CONTEXT);
      assert.equal((await this.optionReply()).type, K.NBD_REP_ACK);
    }
    this.send(encodeOption(K.NBD_OPT_GO, encodeInfoRequest({ name, infos: [K.NBD_INFO_BLOCK_SIZE] })));
    for (;;) {
      const r = await this.optionReply();
      if (r.type === K.NBD_REP_ACK) return;
      assert.equal(r.type, K.NBD_REP_INFO);
    }
  }
  /** Reads one reply (simple READ data length given by `readLength`). */
  async reply(readLength = 0): Promise<Reply> {
    let buf = Buffer.alloc(0);
    for (;;) {
      const step = decodeReply(buf, () => readLength);
      if (step.kind === 'reply') return step.reply;
      const more = await this.input.read(step.bytesNeeded);
      assert.ok(more, 'connection closed before a reply');
      buf = Buffer.concat([buf, more]);
    }
  }
  async closed(): Promise<boolean> {
    return (await this.input.read(1)) === undefined;
  }
  end(): void {
    this.socket.destroy();
  }
}

function req(type: number, offset: number | bigint, length: number, flags = 0, cookie = 7n): NbdRequest {
  return { type, offset: BigInt(offset), length, flags, cookie };
}

function errorOf(r: Reply): number {
  if (r.kind === 'simple') return r.error;
  if (r.payload.kind === 'error' || r.payload.kind === 'error-offset') return r.payload.error;
  return 0;
}

describe('nbd server under hostile input', () => {
  let h: Harness;
  let good: Raw;
  before(async () => {
    h = await startHarness();
    good = await Raw.open(h.port);
    await good.go('disk', false);
  });
  after(async () => {
    good.end();
    await h.close();
  });

  /** The well-behaved client writes and reads back: the server is unaffected. */
  async function goodStillWorks(tag: number): Promise<void> {
    const data = Buffer.alloc(4096, tag);
    good.send(encodeRequest(req(K.NBD_CMD_WRITE, 8192, 4096, 0, 1n), data));
    assert.equal(errorOf(await good.reply()), 0);
    good.send(encodeRequest(req(K.NBD_CMD_READ, 8192, 4096, 0, 2n)));
    const r = await good.reply(4096);
    assert.ok(r.kind === 'simple' && r.error === 0 && Buffer.from(r.data).equals(data));
  }

  test('bad magic in the handshake and in transmission: hard disconnect', async () => {
    const a = await Raw.open(h.port);
    a.send(encodeClientFlags(3));
    const bad = Buffer.from(encodeOption(K.NBD_OPT_LIST));
    bad.write('XHAVEOPT', 0, 'latin1');
    a.send(bad);
    assert.ok(await a.closed());
    const b = await Raw.open(h.port);
    await b.go('disk', false);
    const r = Buffer.from(encodeRequest(req(K.NBD_CMD_READ, 0, 512)));
    r.writeUInt32BE(0xdeadbeef, 0);
    b.send(r);
    assert.ok(await b.closed());
    await goodStillWorks(1);
  });

  test('unknown client flags: disconnect', async () => {
    const a = await Raw.open(h.port);
    a.send(encodeClientFlags(0x80));
    assert.ok(await a.closed());
  });

  test('unknown option gets ERR_UNSUP and the connection keeps working', async () => {
    const a = await Raw.open(h.port);
    a.send(encodeClientFlags(3));
    a.send(encodeOption(0x4242, Buffer.from('junk')));
    const r = await a.optionReply();
    assert.equal(r.type, K.NBD_REP_ERR_UNSUP);
    assert.equal(r.option, 0x4242);
    a.send(encodeOption(K.NBD_OPT_LIST));
    assert.equal((await a.optionReply()).type, K.NBD_REP_SERVER);
    assert.equal((await a.optionReply()).type, K.NBD_REP_SERVER);
    assert.equal((await a.optionReply()).type, K.NBD_REP_ACK);
    a.send(encodeOption(K.NBD_OPT_GO, encodeInfoRequest({ name: 'nope', infos: [] })));
    assert.equal((await a.optionReply()).type, K.NBD_REP_ERR_UNKNOWN);
    a.send(encodeOption(K.NBD_OPT_ABORT));
    assert.equal((await a.optionReply()).type, K.NBD_REP_ACK);
    assert.ok(await a.closed());
  });

  test('oversized option length: drained and answered ERR_TOO_BIG; absurd length: disconnect', async () => {
    const a = await Raw.open(h.port);
    a.send(encodeClientFlags(3));
    a.send(encodeOption(K.NBD_OPT_LIST, Buffer.alloc(K.NBD_MAX_OPTION_LENGTH + 1)));
    assert.equal((await a.optionReply()).type, K.NBD_REP_ERR_TOO_BIG);
    a.send(encodeOption(K.NBD_OPT_STRUCTURED_REPLY));
    assert.equal((await a.optionReply()).type, K.NBD_REP_ACK);
    const head = Buffer.from(encodeOption(K.NBD_OPT_GO));
    head.writeUInt32BE(0xffffffff, 12);
    a.send(head);
    assert.ok(await a.closed());
  });

  test('unknown export with EXPORT_NAME: the session is closed', async () => {
    const a = await Raw.open(h.port);
    a.send(encodeClientFlags(3));
    a.send(encodeOption(K.NBD_OPT_EXPORT_NAME, Buffer.from('nope')));
    assert.ok(await a.closed());
    const b = await Raw.open(h.port);
    b.send(encodeClientFlags(3));
    b.send(encodeOption(K.NBD_OPT_EXPORT_NAME, Buffer.from('disk')));
    const reply = await b.input.read(10); // NO_ZEROES negotiated: size + flags only
    assert.equal(reply?.readBigUInt64BE(0), 64n * 1024n * 1024n);
    b.end();
  });

  test('a lease held elsewhere: GO answered ERR_POLICY with a message', async () => {
    h.provider.locked.add('ro');
    try {
      const a = await Raw.open(h.port);
      a.send(encodeClientFlags(3));
      a.send(encodeOption(K.NBD_OPT_GO, encodeInfoRequest({ name: 'ro', infos: [] })));
      const r = await a.optionReply();
      assert.equal(r.type, K.NBD_REP_ERR_POLICY);
      assert.match(r.data.toString(), /lease|unlock/);
      a.end();
    } finally {
      h.provider.locked.delete('ro');
    }
  });

  test('out-of-range offsets, bad flags, unknown commands, oversized lengths get the spec errno', async () => {
    const size = 64 * 1024 * 1024;
    const a = await Raw.open(h.port);
    await a.go('disk', false);
    const cases: Array<[NbdRequest, number, Uint8Array?]> = [
      [req(K.NBD_CMD_READ, size - 512, 1024), K.NBD_EINVAL],
      [req(K.NBD_CMD_READ, (1n << 64n) - 1n, 512), K.NBD_EINVAL],
      [req(K.NBD_CMD_WRITE, size, 512), K.NBD_ENOSPC, Buffer.alloc(512)],
      [req(K.NBD_CMD_WRITE_ZEROES, size - 512, 4096), K.NBD_ENOSPC],
      [req(K.NBD_CMD_TRIM, size, 1), K.NBD_EINVAL],
      [req(K.NBD_CMD_READ, 0, 512, K.NBD_CMD_FLAG_DF), K.NBD_EINVAL], // DF without structured replies
      [req(K.NBD_CMD_WRITE, 0, 512, K.NBD_CMD_FLAG_REQ_ONE), K.NBD_EINVAL, Buffer.alloc(512)],
      [req(K.NBD_CMD_FLUSH, 4096, 0), K.NBD_EINVAL],
      [req(K.NBD_CMD_BLOCK_STATUS, 0, 512), K.NBD_EINVAL], // no meta context negotiated
      [req(42, 0, 0), K.NBD_EINVAL],
      [req(K.NBD_CMD_READ, 0, K.NBD_MAX_PAYLOAD + 1), K.NBD_EINVAL],
      [req(K.NBD_CMD_WRITE, 0, K.NBD_MAX_PAYLOAD + 1), K.NBD_EINVAL, Buffer.alloc(K.NBD_MAX_PAYLOAD + 1)],
    ];
    for (const [r, errno, payload] of cases) {
      a.send(encodeRequest(r, payload));
      const reply = await a.reply();
      assert.equal(errorOf(reply), errno, `${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`);
    }
    // The connection is still in step: a READ works.
    a.send(encodeRequest(req(K.NBD_CMD_READ, 0, 512)));
    assert.equal(errorOf(await a.reply(512)), 0);
    a.end();
    await goodStillWorks(2);
  });

  test('structured replies: READ errors are error chunks, oversized READ is EOVERFLOW, writes on read-only are EPERM', async () => {
    const a = await Raw.open(h.port);
    await a.go('ro', true);
    a.send(encodeRequest(req(K.NBD_CMD_READ, 0, K.NBD_MAX_PAYLOAD + 1)));
    let r = await a.reply();
    assert.ok(r.kind === 'chunk' && r.payload.kind === 'error' && r.payload.error === K.NBD_EOVERFLOW);
    a.send(encodeRequest(req(K.NBD_CMD_WRITE, 0, 512), Buffer.alloc(512)));
    assert.equal(errorOf(await a.reply()), K.NBD_EPERM);
    a.send(encodeRequest(req(K.NBD_CMD_READ, 0, 8192, K.NBD_CMD_FLAG_DF)));
    r = await a.reply();
    assert.ok(r.kind === 'chunk' && r.payload.kind === 'offset-data' && r.payload.data.byteLength === 8192, 'DF: one data chunk');
    a.send(encodeRequest(req(K.NBD_CMD_BLOCK_STATUS, 0, 4096, K.NBD_CMD_FLAG_REQ_ONE)));
    r = await a.reply();
    assert.ok(r.kind === 'chunk' && r.payload.kind === 'block-status');
    if (r.kind === 'chunk' && r.payload.kind === 'block-status') assert.deepEqual(r.payload.extents, [{ length: 4096, flags: 3 }]);
    a.end();
  });

  test('a client vanishing mid-WRITE payload: device released, others unaffected', async () => {
    const releases = h.provider.releases;
    const a = await Raw.open(h.port);
    await a.go('disk', false);
    const full = encodeRequest(req(K.NBD_CMD_WRITE, 0, 1024 * 1024), Buffer.alloc(1024 * 1024, 0xee));
    a.send(full.subarray(0, 28 + 300_000));
    await new Promise((r) => setTimeout(r, 50));
    a.end();
    for (let i = 0; i < 50 && h.provider.releases === releases; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(h.provider.releases, releases + 1, 'the device was released');
    await goodStillWorks(3);
  });
});
