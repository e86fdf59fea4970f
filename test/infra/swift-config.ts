/**
 * The files of a Swift all-in-one: swift.conf, one paste config per server, and a Python
 * launcher. Swift 2.30 reads swift.conf (hash prefix, storage policies, [swift-constraints])
 * from the fixed path /etc/swift/swift.conf at import time and has no option or env var to move
 * it, so the launcher points swift.common.utils at our dir and reloads constraints and policies
 * before the server imports anything that caches them, then calls run_wsgi as the stock
 * swift-*-server scripts do. The proxy's launcher also builds the three 1-replica rings first
 * (with swift.common.ring.RingBuilder, the class swift-ring-builder drives: one Python start
 * instead of nine), and the object server's checks that its devices dir takes user xattrs.
 */

/** The ports and paths a config is written for. */
export interface SwiftLayout {
  readonly dir: string;
  readonly devices: string;
  readonly user: string;
  readonly memcachedPort: number;
  readonly proxyPort: number;
  readonly accountPort: number;
  readonly containerPort: number;
  readonly objectPort: number;
  readonly maxFileSize: number;
}

/** The swift servers, in the names run_wsgi and the paste configs use. */
export type SwiftServer = 'account-server' | 'container-server' | 'object-server' | 'proxy-server';

/** What the Python launcher reads from its one JSON argument. */
export interface LaunchSpec {
  readonly swift_dir: string;
  readonly conf: string;
  readonly server: SwiftServer;
  readonly check_xattr?: string;
  readonly rings?: readonly { readonly name: string; readonly port: number; readonly part_power: number }[];
}

/** Printed on stderr by the launcher when the devices dir refuses user xattrs. */
export const NO_XATTR_MARK = 'STOWAGE_NO_USER_XATTR';

/** The launcher (Python 3, run by the interpreter of the installed swift-*-server scripts). */
export const LAUNCHER_PY = `import errno, json, os, sys
spec = json.loads(sys.argv[1])
from swift.common import utils
utils.set_swift_dir(spec['swift_dir'])
from swift.common import constraints, storage_policy
constraints.reload_constraints()
storage_policy.reload_storage_policies()
probe_dir = spec.get('check_xattr')
if probe_dir:
    probe = os.path.join(probe_dir, '.xattr-probe-%d' % os.getpid())
    open(probe, 'wb').close()
    try:
        os.setxattr(probe, 'user.stowage.probe', b'x' * 64)
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        sys.stderr.write('${NO_XATTR_MARK}: %s: %s\\n' % (probe_dir, e))
        sys.exit(3)
    finally:
        os.unlink(probe)
rings = spec.get('rings') or []
if rings:
    from swift.common.ring import RingBuilder
    for ring in rings:
        builder = RingBuilder(ring['part_power'], 1, 1)
        builder.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1',
                         'port': ring['port'], 'device': 'd1', 'weight': 100,
                         'meta': ''})
        builder.rebalance()
        final = os.path.join(spec['swift_dir'], ring['name'] + '.ring.gz')
        builder.get_ring().save(final + '.tmp')
        os.rename(final + '.tmp', final)
kwargs = {'verbose': True}
if spec['server'] == 'object-server':
    from swift.obj import server as object_server
    kwargs['global_conf_callback'] = object_server.global_conf_callback
from swift.common.wsgi import run_wsgi
sys.exit(run_wsgi(spec['conf'], spec['server'], **kwargs))
`;

/** swift.conf: our hash salt, one replication policy, and the constraints we test against. */
export function swiftConf(layout: SwiftLayout): string {
  return `[swift-hash]
swift_hash_path_suffix = stowage-test-suffix
swift_hash_path_prefix = stowage-test-prefix

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
max_file_size = ${layout.maxFileSize}
`;
}

function defaults(layout: SwiftLayout, port: number, logName: string): string {
  // workers = 0: one process, no fork, so a process-group kill is the whole server.
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
bind_timeout = 5
workers = 0
user = ${layout.user}
swift_dir = ${layout.dir}
devices = ${layout.devices}
mount_check = false
disable_fallocate = true
log_name = ${logName}
log_level = INFO
recon_cache_path = ${layout.dir}/recon
`;
}

/** The paste config of one storage server (account, container or object). */
export function storageServerConf(layout: SwiftLayout, kind: 'account' | 'container' | 'object'): string {
  const port = kind === 'account' ? layout.accountPort : kind === 'container' ? layout.containerPort : layout.objectPort;
  return `${defaults(layout, port, `${kind}-server`)}
[pipeline:main]
pipeline = healthcheck ${kind}-server

[app:${kind}-server]
use = egg:swift#${kind}

[filter:healthcheck]
use = egg:swift#healthcheck
`;
}

/**
 * The proxy's paste config. The pipeline follows Swift 2.30's SAIO sample order, minus the
 * filters we do not test (tempurl, ratelimit, quotas, versioning, symlink, ...): bulk before
 * s3api, s3api right before tempauth (its own docs), then copy slo dlo.
 */
export function proxyServerConf(layout: SwiftLayout): string {
  // s3api refuses multipart parts below min_segment_size (S3's 5 MiB) except the last; a part
  // may not exceed max_file_size either, so keep the minimum below a small max_file_size.
  const s3MinSegment = Math.min(5 * 1024 * 1024, Math.floor(layout.maxFileSize / 2));
  return `${defaults(layout, layout.proxyPort, 'proxy-server')}
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${layout.memcachedPort}

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
min_segment_size = ${s3MinSegment}

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
`;
}
