#!/usr/bin/env bash
# Installs jobworker on a Debian host with systemd (as root): the jobworker group, the app, the
# systemd units, the configuration and the PKI. Running it again changes nothing unless something
# differs from what it would install; it never overwrites an existing configuration file.
#
#   install.sh [OPTIONS]
#     --server-name NAME   a DNS name for a new server certificate (repeatable)
#     --server-ip IP       an IP address for a new server certificate (repeatable); without
#                          either, a new certificate names only localhost, 127.0.0.1 and ::1
#     --import-pki DIR     use DIR/ca.crt, DIR/server.crt, DIR/server.key and, if there,
#                          DIR/crl.pem instead of making a new PKI (no CA key is installed)
#     --appdir DIR         where the app is installed (default /opt/jobworker)
#     --use-checkout       run the app from this checkout instead of a copy (development): the
#                          units point at it, and it must be root's and writable by no one else
#     --root DIR           install into DIR as if it were / (tests, images): the group is made in
#                          DIR/etc/group, systemctl is never run
#     --dry-run            print what would change, change nothing
#
# What it makes (modes are part of the security model, see SECURITY.md):
#   group jobworker (system group, systemd-sysusers; /etc/sysusers.d/jobworker.conf)
#   /opt/jobworker                 the checkout's tracked files, its compiled build (dist/, what
#                                  the units run with plain node), the runtime dependencies from
#                                  its node_modules (package-lock.json's dependencies), the helper
#                                  built there; root's, 0755/0644
#   /etc/jobworker                 0750 root:jobworker
#     executor.json                0600 root:root      from deploy/executor.sample.json
#     api.json                     0640 root:jobworker from deploy/api.sample.json
#     pki/                         0750 root:jobworker (made with scripts/pki.sh, or imported)
#       ca.crt server.crt crl.pem  0644 root:root
#       private/                   0750 root:jobworker
#         server.key               0640 root:jobworker (the API, nobody + jobworker, re-reads it
#                                                       on SIGHUP)
#         ca.key                   0600 root:root      (signs client certificates: keep it on
#                                                       another machine if you can)
#   /var/lib/jobworker             0700 root:root      (the executor's state)
#   /etc/systemd/system/jobworker-{jobs,executor,api,crl}.service, jobworker-crl.timer
# The executor makes its socket directory (/run/jobworker) itself.
#
# Needs: node (20 or newer, the one the units run), git and npm ci done in this checkout (the
# dependencies are copied from its node_modules, so no network is needed; the build uses its
# TypeScript compiler), cc (the helper), openssl, systemd-sysusers. It builds the checkout first
# (scripts/build.sh: dist/ and the helper, when out of date).
set -euo pipefail
umask 022

checkout=$(cd "$(dirname "$0")/.." && pwd)
group=jobworker
pki=/etc/jobworker/pki
units=(jobworker-jobs.service jobworker-executor.service jobworker-api.service jobworker-crl.service
  jobworker-crl.timer)

die() {
  echo "install.sh: $*" >&2
  exit 1
}
usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

root='' dry_run=0 appdir=/opt/jobworker use_checkout=0 import_pki='' sans=()
while (($# > 0)); do
  case $1 in
    --server-name) [[ $# -ge 2 ]] || die "--server-name NAME"; sans+=("DNS:$2"); shift 2 ;;
    --server-ip) [[ $# -ge 2 ]] || die "--server-ip IP"
      node -e 'process.exit(require("node:net").isIP(process.argv[1]) ? 0 : 1)' "$2" ||
        die "--server-ip $2: not an IP address"
      sans+=("IP:$2"); shift 2 ;;
    --import-pki) [[ $# -ge 2 ]] || die "--import-pki DIR"; import_pki=$2; shift 2 ;;
    --appdir) [[ $# -ge 2 ]] || die "--appdir DIR"; appdir=$2; shift 2 ;;
    --use-checkout) use_checkout=1; shift ;;
    --root) [[ $# -ge 2 ]] || die "--root DIR"; root=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[[ $(id -u) -eq 0 ]] || die "run as root (it creates a group, root-owned directories and units)"
for tool in git openssl cc systemd-sysusers; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done
node_bin=$(command -v node) || die "node is missing (Node.js 20 or newer)"
node_bin=$(readlink -f "$node_bin")
# package.json's engines.node (">=20.19"): the node the units will run must satisfy it.
# shellcheck disable=SC2016 # JavaScript, not shell
"$node_bin" -e '
  const wanted = /^>=(\d+)\.(\d+)/.exec(require(process.argv[1]).engines?.node ?? "") ?? [0, 20, 0];
  const [major, minor] = process.versions.node.split(".").map(Number);
  const ok = major > +wanted[1] || (major === +wanted[1] && minor >= +wanted[2]);
  if (!ok) console.error(`install.sh: Node.js ${wanted[0]} is required, ${process.execPath} is ${process.version}`);
  process.exit(ok ? 0 : 1);' "$checkout/package.json" || exit 1

# R is the prefix of every path written; the paths shown, and those the installed files name, are
# the ones the target system will see.
R=''
if [[ -n $root ]]; then
  [[ -d $root ]] || die "--root $root: not a directory"
  R=$(cd "$root" && pwd -P)
  [[ $R != / ]] || R=''
fi
# AR prefixes the app's paths: with --use-checkout they are the checkout's, on this host.
AR=$R
if ((use_checkout)); then
  appdir=$checkout
  AR=''
fi
[[ $appdir =~ ^(/[A-Za-z0-9_][A-Za-z0-9._-]*)+/?$ && $appdir != */../* && $appdir != */.. ]] ||
  die "--appdir $appdir: an absolute path of letters, digits, . _ - and / (no ..)"
appdir=${appdir%/}
case $appdir/ in
  /home/* | /root/* | /run/user/*)
    die "$appdir: the API's unit hides /home, /root and /run/user (ProtectHome=yes); use another directory" ;;
esac
if ((!use_checkout)); then
  case $(realpath -m "$R$appdir")/ in
    "$checkout"/*) die "--appdir $appdir is (in) this checkout: use --use-checkout to run from it" ;;
  esac
fi
((${#sans[@]} == 0 || ${#import_pki} == 0)) || die "--import-pki takes the server certificate from DIR: no --server-name/--server-ip with it"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---------------------------------------------------------------------------------------------
# Changes: every one is printed, and made only without --dry-run.

changes=0
say() { echo "  $*"; }
# change DESCRIPTION COMMAND...: counts, prints and (unless --dry-run) runs one change.
change() {
  local what=$1
  shift
  changes=$((changes + 1))
  if ((dry_run)); then
    say "would $what"
  else
    say "$what"
    "$@"
  fi
}

gid_of() {
  if [[ $1 == root ]]; then
    echo 0
  else
    awk -F: -v name="$1" '$1 == name { print $3; exit }' "$R/etc/group" 2>/dev/null || true
  fi
}

# attributes PATH MODE GROUP: owner root, the group, the mode.
attributes() {
  local path=$1 mode=$2 owner_group=$3 gid current
  gid=$(gid_of "$owner_group")
  current=$(stat -c '%a %u %g' "$R$path")
  if [[ $current != "$(printf '%o' "$((8#$mode))") 0 $gid" ]]; then
    change "set $path to $mode root:$owner_group (was $current)" set_attributes "$path" "$mode" "$owner_group"
  fi
}
set_attributes() {
  chown "0:$(gid_of "$3")" "$R$1"
  chmod "$2" "$R$1"
}
make_dir() {
  mkdir -p "$R$1"
  set_attributes "$@"
}

ensure_dir() {
  local path=$1 mode=$2 owner_group=$3
  if [[ -d $R$path ]]; then
    attributes "$path" "$mode" "$owner_group"
  else
    change "create $path/ ($mode root:$owner_group)" make_dir "$path" "$mode" "$owner_group"
  fi
}

# ensure_file SOURCE PATH MODE GROUP: PATH gets SOURCE's content.
ensure_file() {
  local source=$1 path=$2 mode=$3 owner_group=$4
  if [[ -f $R$path ]] && cmp -s "$source" "$R$path"; then
    attributes "$path" "$mode" "$owner_group"
  else
    local verb=install
    [[ -e $R$path ]] && verb=update
    change "$verb $path ($mode root:$owner_group)" put_file "$source" "$path" "$mode" "$owner_group"
  fi
}

# new_file SOURCE PATH MODE GROUP: like ensure_file, but an existing PATH keeps its content.
new_file() {
  local source=$1 path=$2 mode=$3 owner_group=$4
  if [[ -e $R$path ]]; then
    cmp -s "$source" "$R$path" || say "keep $path (exists; not overwritten)"
    attributes "$path" "$mode" "$owner_group"
  else
    change "install $path ($mode root:$owner_group)" put_file "$source" "$path" "$mode" "$owner_group"
  fi
}

# Written beside the target and renamed over it: a reader never sees half a file.
put_file() {
  local source=$1 path=$2 mode=$3 owner_group=$4
  mkdir -p "$(dirname "$R$path")"
  cp "$source" "$R$path.new"
  chown "0:$(gid_of "$owner_group")" "$R$path.new"
  chmod "$mode" "$R$path.new"
  mv -f "$R$path.new" "$R$path"
}

# ---------------------------------------------------------------------------------------------
# Checks that need nothing changed: a bad --import-pki or checkout fails before anything is done.

if [[ -n $import_pki ]]; then
  for file in ca.crt server.crt server.key; do
    [[ -f $import_pki/$file ]] || die "--import-pki: $import_pki/$file is missing"
  done
  openssl verify -purpose sslserver -CAfile "$import_pki/ca.crt" "$import_pki/server.crt" >/dev/null 2>"$work/verify.log" ||
    die "--import-pki: server.crt does not verify against ca.crt as a TLS server certificate: $(cat "$work/verify.log")"
  [[ "$(openssl x509 -in "$import_pki/server.crt" -noout -pubkey)" == "$(openssl pkey -in "$import_pki/server.key" -passin pass: -pubout 2>/dev/null)" ]] ||
    die "--import-pki: server.key is not the key of server.crt"
  if [[ -f $import_pki/crl.pem ]]; then
    openssl crl -in "$import_pki/crl.pem" -CAfile "$import_pki/ca.crt" -noout 2>/dev/null ||
      die "--import-pki: crl.pem is not a CRL signed by ca.crt"
  fi
  if [[ -f $R$pki/ca.crt ]] && ! cmp -s "$import_pki/ca.crt" "$R$pki/ca.crt"; then
    die "--import-pki: $pki holds a PKI of another CA; move it away first"
  fi
fi

# The compiled build the units run (dist/), brought up to date in the checkout. It changes
# nothing outside the checkout, so a dry run does it too.
[[ -x $checkout/node_modules/.bin/tsc ]] || die "run npm ci in $checkout first (the build needs its TypeScript compiler)"
bash "$checkout/scripts/build.sh" >/dev/null || die "the build failed (bash $checkout/scripts/build.sh)"

if ((use_checkout)); then
  # Root runs this code: nobody else may be able to change any of it. The API, as nobody, must
  # be able to reach it.
  dir=$checkout
  while [[ $dir != / ]]; do
    [[ $(stat -c '%u' "$dir") == 0 && $(($(stat -c '0%a' "$dir") & 8#022)) == 0 ]] ||
      die "--use-checkout: $dir must be root's and writable by no one else"
    (($(stat -c '0%a' "$dir") & 8#001)) || die "--use-checkout: $dir must be searchable by others (the API runs as nobody)"
    dir=$(dirname "$dir")
  done
  unsafe=$(find "$checkout" \( -path "$checkout/.git" -o -path "$checkout/.state" \) -prune -o \
    \( ! -user 0 -o -perm /022 \) ! -type l -print -quit)
  [[ -z $unsafe ]] || die "--use-checkout: $unsafe must be root's and writable by no one else"
fi

if ((dry_run)); then
  echo "jobworker install${R:+ into $R} (dry run: nothing is changed)"
else
  echo "jobworker install${R:+ into $R}"
fi

# ---------------------------------------------------------------------------------------------
# The group: only the API gets it, and only it may open the executor's socket.

ensure_file "$checkout/deploy/systemd/jobworker.sysusers.conf" /etc/sysusers.d/jobworker.conf 0644 root
if [[ -z $(gid_of "$group") ]]; then
  if [[ -n $R ]]; then
    change "create system group $group in $R/etc/group" \
      systemd-sysusers --root="$R" "$checkout/deploy/systemd/jobworker.sysusers.conf"
  else
    change "create system group $group" systemd-sysusers "$checkout/deploy/systemd/jobworker.sysusers.conf"
  fi
  ((dry_run)) || [[ -n $(gid_of "$group") ]] || die "systemd-sysusers did not create the group $group"
fi
if [[ -z $R ]] && ((!dry_run)); then
  # systemd (SupplementaryGroups=) resolves it through NSS, the executor reads /etc/group.
  getent group "$group" >/dev/null || die "group $group is not visible through NSS"
fi

# ---------------------------------------------------------------------------------------------
# The app.

if ((use_checkout)); then
  say "app: this checkout, $checkout (--use-checkout)"
else
  # Its parent is created if missing, never changed: but root runs what is below it.
  parent=$(dirname "$appdir")
  if [[ -d $R$parent ]]; then
    [[ $(stat -c '%u' "$R$parent") == 0 && $(($(stat -c '0%a' "$R$parent") & 8#022)) == 0 ]] ||
      die "$parent must be root's and writable by no one else: root runs the app below it"
  else
    ensure_dir "$parent" 0755 root
  fi
  ensure_dir "$appdir" 0755 root
  git -c safe.directory="$checkout" -C "$checkout" ls-files -z >"$work/tracked" ||
    die "cannot list the tracked files of $checkout (a git checkout is needed)"
  # Node does the copying: the dependency closure comes from package-lock.json, and thousands of
  # files are compared faster than with one cmp per file.
  "$node_bin" - "$checkout" "$R$appdir" "$appdir" "$dry_run" "$work/tracked" "$work/app-changes" <<'EOF'
const fs = require('node:fs');
const path = require('node:path');
const [checkout, dest, shown, dryRun, trackedFile, countFile] = process.argv.slice(2);
const dry = dryRun === '1';
const fail = (message) => {
  console.error(`install.sh: ${message}`);
  process.exit(1);
};
const read = (file) => JSON.parse(fs.readFileSync(path.join(checkout, file), 'utf8'));

// Runtime dependencies: the closure of package.json's dependencies, resolved in
// package-lock.json the way Node resolves node_modules. Left out: msgpackr's optional native
// decoder, which the app never loads (shared/framing.ts uses msgpackr's plain JavaScript build),
// so that no native addon is there for a root process to load.
const NOT_INSTALLED = new Set(['msgpackr-extract']);
const lock = read('package-lock.json');
const packages = lock.packages ?? fail('package-lock.json has no "packages" (lockfile v2 or v3 needed)');
const resolveIn = (from, name) => {
  for (let base = from; ; ) {
    const candidate = `${base ? `${base}/` : ''}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!base) return undefined;
    const at = base.lastIndexOf('/node_modules/');
    base = at < 0 ? '' : base.slice(0, at);
  }
};
const wanted = new Set();
const roots = Object.keys(read('package.json').dependencies ?? {});
const queue = roots.map((name) => ['', name, false]);
while (queue.length > 0) {
  const [from, name, optional] = queue.shift();
  if (NOT_INSTALLED.has(name)) continue;
  const found = resolveIn(from, name);
  if (found === undefined) {
    if (optional) continue;
    fail(`package-lock.json does not resolve ${name} (from ${from || 'package.json'})`);
  }
  if (wanted.has(found)) continue;
  wanted.add(found);
  const entry = packages[found];
  for (const dep of Object.keys(entry.dependencies ?? {})) queue.push([found, dep, false]);
  for (const dep of Object.keys(entry.optionalDependencies ?? {})) queue.push([found, dep, true]);
  for (const dep of Object.keys(entry.peerDependencies ?? {})) queue.push([found, dep, true]);
}

const files = fs
  .readFileSync(trackedFile, 'utf8')
  .split('\0')
  .filter((file) => file && fs.existsSync(path.join(checkout, file)));
const walk = (dir) => {
  for (const entry of fs.readdirSync(path.join(checkout, dir), { withFileTypes: true })) {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') walk(rel); // nested packages are in `wanted` themselves
    } else if (entry.isFile() || entry.isSymbolicLink()) files.push(rel);
  }
};
// The compiled build, whole (scripts/build.sh has just brought it up to date).
if (!fs.existsSync(path.join(checkout, 'dist', '.fingerprint')))
  fail(`${checkout}/dist is not built: run bash scripts/build.sh there`);
walk('dist');
for (const pkg of [...wanted].sort()) {
  const entry = packages[pkg];
  const dir = path.join(checkout, pkg);
  if (!fs.existsSync(dir)) {
    if (entry.optional) continue; // another platform's build
    fail(`${pkg} is missing: run npm ci in ${checkout}`);
  }
  const version = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
  if (version !== entry.version)
    fail(`${pkg} is ${version}, package-lock.json says ${entry.version}: run npm ci in ${checkout}`);
  walk(pkg);
}
const list = [...new Set(files)].sort();

let created = 0;
let updated = 0;
let removed = 0;
const owned = (stat, mode) => (stat.mode & 0o7777) === mode && stat.uid === 0 && stat.gid === 0;
const dirs = new Set();
for (const file of list) {
  for (let dir = path.dirname(file); dir !== '.'; dir = path.dirname(dir)) dirs.add(dir);
}
for (const dir of [...dirs].sort()) {
  const target = path.join(dest, dir);
  const stat = fs.lstatSync(target, { throwIfNoEntry: false });
  if (stat?.isDirectory() && owned(stat, 0o755)) continue;
  if (stat && !stat.isDirectory()) fail(`${target} is in the way of a directory`);
  stat ? updated++ : created++;
  if (!dry) {
    fs.mkdirSync(target, { recursive: true });
    fs.chownSync(target, 0, 0);
    fs.chmodSync(target, 0o755);
  }
}
for (const file of list) {
  const source = path.join(checkout, file);
  const target = path.join(dest, file);
  const from = fs.lstatSync(source);
  const to = fs.lstatSync(target, { throwIfNoEntry: false });
  if (from.isSymbolicLink()) {
    const link = fs.readlinkSync(source);
    if (to?.isSymbolicLink() && fs.readlinkSync(target) === link && to.uid === 0) continue;
    to ? updated++ : created++;
    if (!dry) {
      fs.rmSync(target, { force: true });
      fs.symlinkSync(link, target);
      fs.lchownSync(target, 0, 0);
    }
    continue;
  }
  const mode = from.mode & 0o111 ? 0o755 : 0o644;
  const same =
    to?.isFile() &&
    to.size === from.size &&
    fs.readFileSync(source).equals(fs.readFileSync(target));
  if (same && owned(to, mode)) continue;
  to ? updated++ : created++;
  if (dry) continue;
  if (same) {
    fs.chownSync(target, 0, 0);
    fs.chmodSync(target, mode);
  } else {
    fs.copyFileSync(source, `${target}.new`);
    fs.chownSync(`${target}.new`, 0, 0);
    fs.chmodSync(`${target}.new`, mode);
    fs.renameSync(`${target}.new`, target);
  }
}

// What an earlier run installed and this one does not: removed, with directories left empty.
const manifestPath = path.join(dest, '.jobworker-install-manifest');
const manifest = `${list.join('\n')}\n`;
const before = fs.existsSync(manifestPath) ? fs.readFileSync(manifestPath, 'utf8') : '';
const keep = new Set(list);
for (const file of before.split('\n').filter(Boolean)) {
  if (keep.has(file) || !fs.lstatSync(path.join(dest, file), { throwIfNoEntry: false })) continue;
  removed++;
  if (dry) continue;
  fs.rmSync(path.join(dest, file));
  for (let dir = path.dirname(file); dir !== '.'; dir = path.dirname(dir)) {
    try {
      fs.rmdirSync(path.join(dest, dir));
    } catch {
      break; // not empty
    }
  }
}
const manifestStat = fs.lstatSync(manifestPath, { throwIfNoEntry: false });
const manifestChanged = before !== manifest || !manifestStat || !owned(manifestStat, 0o644);
if (manifestChanged && !dry) {
  fs.writeFileSync(`${manifestPath}.new`, manifest);
  fs.chownSync(`${manifestPath}.new`, 0, 0);
  fs.chmodSync(`${manifestPath}.new`, 0o644);
  fs.renameSync(`${manifestPath}.new`, manifestPath);
}
const total = created + updated + removed;
const verb = dry ? 'would install' : 'install';
console.log(
  total === 0
    ? `  app: ${shown} is up to date (${list.length} files)`
    : `  ${verb} the app in ${shown}: ${created} new, ${updated} changed, ${removed} removed ` +
        `(${list.length} files in ${dirs.size} directories)`,
);
fs.writeFileSync(countFile, String(total + (total === 0 && manifestChanged ? 1 : 0)));
EOF
  changes=$((changes + $(cat "$work/app-changes")))
fi

# The helper, built where the units run it from (root's and writable by no one else, as is every
# directory above it: the executor refuses it otherwise).
helper_src=$AR$appdir/executor/helper/jobworker-helper.c
helper=$appdir/executor/helper/build/jobworker-helper
build_helper() {
  bash "$AR$appdir/scripts/build-helper.sh" >/dev/null
}
if [[ ! -f $AR$helper || ! $AR$helper -nt $helper_src ]] ||
  ! cmp -s "$checkout/executor/helper/jobworker-helper.c" "$helper_src"; then
  change "build the helper $helper" build_helper
fi
if ((!dry_run && !use_checkout)); then
  ensure_dir "$(dirname "$helper")" 0755 root
  attributes "$helper" 0755 root
fi

# ---------------------------------------------------------------------------------------------
# State, configuration and PKI.

ensure_dir /var/lib/jobworker 0700 root
ensure_dir /etc/jobworker 0750 "$group"
ensure_dir $pki 0750 "$group"

# pki.sh writes the absolute path it was given into openssl.cnf: with --root, that is the path
# the target system will see once it has run.
run_pki() {
  if [[ -n $R && -f $R$pki/openssl.cnf ]]; then sed -i "s#^dir = .*#dir = $R$pki#" "$R$pki/openssl.cnf"; fi
  bash "$checkout/scripts/pki.sh" "$@" >/dev/null
  if [[ -n $R ]]; then sed -i "s#^dir = .*#dir = $pki#" "$R$pki/openssl.cnf"; fi
}
new_pki() {
  run_pki ca "$R$pki"
  new_server_certificate
}
new_server_certificate() {
  run_pki server "$R$pki" server "${sans[@]}"
  set_attributes $pki/private 0750 "$group"
  set_attributes $pki/private/server.key 0640 "$group"
}
if [[ -z $import_pki && ! -f $R$pki/server.crt && ${#sans[@]} -eq 0 ]]; then
  say "(no --server-name or --server-ip: a new server certificate names only localhost, 127.0.0.1 and ::1)"
fi

if [[ -n $import_pki ]]; then
  ensure_dir $pki/private 0750 "$group"
  ensure_file "$import_pki/ca.crt" $pki/ca.crt 0644 root
  ensure_file "$import_pki/server.crt" $pki/server.crt 0644 root
  ensure_file "$import_pki/server.key" $pki/private/server.key 0640 "$group"
  if [[ -f $import_pki/crl.pem ]]; then
    ensure_file "$import_pki/crl.pem" $pki/crl.pem 0644 root
  fi
elif [[ ! -f $R$pki/ca.crt ]]; then
  change "create a CA and a server certificate (${sans[*]:-DNS:localhost IP:127.0.0.1 IP:::1}) in $pki" new_pki
elif [[ ! -f $R$pki/server.crt ]]; then
  [[ -f $R$pki/private/ca.key ]] || die "$pki has a CA certificate but neither a server certificate nor the CA key to issue one"
  change "create a server certificate (${sans[*]:-DNS:localhost IP:127.0.0.1 IP:::1}) in $pki" new_server_certificate
elif ((${#sans[@]} > 0)); then
  say "keep $pki/server.crt (exists; to issue another, remove it and run again with --server-name/--server-ip)"
fi
if [[ -d $R$pki/private ]]; then
  ensure_dir $pki/private 0750 "$group"
  for file in ca.crt server.crt crl.pem; do
    [[ ! -f $R$pki/$file ]] || attributes $pki/$file 0644 root
  done
  [[ ! -f $R$pki/private/server.key ]] || attributes $pki/private/server.key 0640 "$group"
  [[ ! -f $R$pki/private/ca.key ]] || attributes $pki/private/ca.key 0600 root
fi

# The samples, adapted: no CRL in the PKI means none in api.json (a CRL file that cannot be read
# would stop the API).
cp "$checkout/deploy/executor.sample.json" "$work/executor.json"
cp "$checkout/deploy/api.sample.json" "$work/api.json"
# Jobs live in jobworker-jobs.service's cgroup (on cgroup v2), apart from the executor's, so that
# the executor can restart while they run.
sed -i 's#"jobsCgroup": null#"jobsCgroup": "/system.slice/jobworker-jobs.service"#' "$work/executor.json"
has_crl=0
if [[ -f $R$pki/crl.pem ]] || [[ -n $import_pki && -f $import_pki/crl.pem ]]; then
  has_crl=1
elif [[ -z $import_pki ]] && ((dry_run)) && [[ ! -f $R$pki/ca.crt ]]; then
  has_crl=1 # the new PKI would have one
fi
if ((!has_crl)); then
  sed -i 's#"crlFile": "[^"]*"#"crlFile": null#' "$work/api.json"
fi
new_file "$work/executor.json" /etc/jobworker/executor.json 0600 root
new_file "$work/api.json" /etc/jobworker/api.json 0640 "$group"

# ---------------------------------------------------------------------------------------------
# The units, naming this installation's app directory and node.

for unit in "${units[@]}"; do
  sed -e "s#/opt/jobworker#$appdir#g" -e "s#/usr/bin/node#$node_bin#g" \
    "$checkout/deploy/systemd/$unit" >"$work/$unit"
  ensure_file "$work/$unit" "/etc/systemd/system/$unit" 0644 root
done

# ---------------------------------------------------------------------------------------------

if ((changes == 0)); then
  echo "nothing to change"
elif ((dry_run)); then
  echo "$changes changes would be made"
else
  echo "$changes changes made"
fi
((dry_run)) && exit 0
if [[ -n $R ]]; then
  echo "installed into $R (no systemctl in --root mode)"
  exit 0
fi

crl_timer=''
if [[ -f $pki/private/ca.key ]]; then
  crl_timer="
  systemctl enable --now jobworker-crl.timer    # renews the 30-day CRL weekly (the CA key is here)"
fi
cat <<EOF

Next steps:
  systemctl daemon-reload
  systemctl enable --now jobworker-jobs jobworker-executor jobworker-api${crl_timer}
  (after an upgrade: systemctl restart jobworker-executor jobworker-api; running jobs carry on.
  To stop every job: node $appdir/dist/executor/drain.js)

A client certificate (CN = identity, OU = role: admin, user or viewer), for the client together
with $pki/ca.crt:
  bash $appdir/scripts/pki.sh client $pki alice admin
      -> $pki/clients/alice.crt, $pki/clients/alice.key
Revoke one: bash $appdir/scripts/pki.sh revoke $pki CERT && systemctl reload jobworker-api

Configuration: /etc/jobworker/executor.json, /etc/jobworker/api.json (then restart the unit);
new TLS files (certificate, key, CA, CRL): systemctl reload jobworker-api.
EOF
if [[ -f $pki/private/ca.key ]]; then
  cat <<EOF

The CA key ($pki/private/ca.key) can issue a certificate for any identity and role.
Keep the CA on another machine if you can: copy $pki there, delete private/ca.key here,
issue and revoke there, and copy crl.pem here at least every 30 days (then reload the API).
EOF
fi
