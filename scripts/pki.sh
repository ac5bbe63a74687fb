#!/usr/bin/env bash
# jobworker's PKI tool (openssl CLI): a CA, server certificates, client certificates whose CN is
# the identity and OU the role, revocation. ECDSA P-384 keys, SHA-384 signatures; private keys
# are created 0600 and never leave DIR.
#
#   pki.sh ca DIR                              DIR/ca.crt, DIR/private/ca.key (10 years)
#   pki.sh server DIR NAME [SAN...]            DIR/NAME.crt, DIR/private/NAME.key (397 days)
#                                              SANs: DNS:host or IP:addr (default DNS:localhost,
#                                              IP:127.0.0.1, IP:::1)
#   pki.sh client DIR CN ROLE [OPTIONS]        DIR/clients/CN.crt, DIR/clients/CN.key (365 days)
#       --days N                               lifetime in days
#       --not-before YYYYMMDDHHMMSSZ           explicit validity (for tests: expired or not yet
#       --not-after  YYYYMMDDHHMMSSZ           valid certificates)
#   pki.sh revoke DIR CERT                     revoke a certificate and regenerate DIR/crl.pem
#   pki.sh crl DIR                             regenerate DIR/crl.pem (valid 30 days)
#
# Roles: admin (everything), user (own jobs), viewer (read-only on all jobs).
set -euo pipefail
umask 077
# Every openssl command reads the whole config, which names the server SANs; give it a value.
export JOBWORKER_SANS=DNS:localhost

die() {
  echo "pki.sh: $*" >&2
  exit 2
}

# OpenSSL's `ca` keeps an index of what it issued: it is what makes revocation and CRLs work.
write_config() {
  local dir=$1
  cat >"$dir/openssl.cnf" <<EOF
[ ca ]
default_ca = jobworker_ca

[ jobworker_ca ]
dir = $dir
database = \$dir/index.txt
serial = \$dir/serial
crlnumber = \$dir/crlnumber
new_certs_dir = \$dir/issued
certificate = \$dir/ca.crt
private_key = \$dir/private/ca.key
default_md = sha384
default_crl_days = 30
policy = any_subject
unique_subject = no
copy_extensions = none
email_in_dn = no

[ any_subject ]
commonName = supplied
organizationalUnitName = optional

[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = jobworker CA

[ ca_extensions ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ server_extensions ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = \${ENV::JOBWORKER_SANS}

[ client_extensions ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
}

new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$1" 2>/dev/null
  chmod 600 "$1"
}

# Names become certificate subjects: keep them to a safe, printable alphabet.
check_name() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$ ]] || die "name '$1': use letters, digits, . _ @ - (at most 64)"
}

sign() {
  local dir=$1 csr=$2 out=$3 extensions=$4
  shift 4
  openssl ca -batch -notext -config "$dir/openssl.cnf" \
    -extensions "$extensions" -in "$csr" -out "$out" "$@" 2>"$dir/.openssl.log" ||
    die "openssl ca failed: $(cat "$dir/.openssl.log")"
  chmod 644 "$out"
  rm -f "$csr" "$dir/.openssl.log"
}

cmd_ca() {
  local dir=${1:?usage: pki.sh ca DIR}
  [[ -e $dir/ca.crt ]] && die "$dir/ca.crt exists already"
  mkdir -p "$dir/private" "$dir/issued" "$dir/clients"
  chmod 700 "$dir/private"
  dir=$(cd "$dir" && pwd)
  write_config "$dir"
  : >"$dir/index.txt"
  echo 1000 >"$dir/crlnumber"
  new_key "$dir/private/ca.key"
  openssl req -new -x509 -config "$dir/openssl.cnf" -extensions ca_extensions -key "$dir/private/ca.key" \
    -sha384 -days 3650 -out "$dir/ca.crt" -set_serial "0x$(openssl rand -hex 16)"
  chmod 644 "$dir/ca.crt"
  openssl rand -hex 16 >"$dir/serial"
  cmd_crl "$dir" >/dev/null
  echo "$dir/ca.crt"
}

cmd_server() {
  local dir=${1:?usage: pki.sh server DIR NAME [SAN...]} name=${2:?usage: pki.sh server DIR NAME [SAN...]}
  shift 2
  check_name "$name"
  [[ -f $dir/ca.crt ]] || die "no CA in $dir (run: pki.sh ca $dir)"
  local sans=("$@")
  ((${#sans[@]} > 0)) || sans=(DNS:localhost IP:127.0.0.1 IP:::1)
  for san in "${sans[@]}"; do [[ $san =~ ^(DNS|IP):[A-Za-z0-9.:*-]+$ ]] || die "SAN '$san': use DNS:name or IP:address"; done
  local joined
  joined=$(IFS=,; echo "${sans[*]}")
  new_key "$dir/private/$name.key"
  openssl req -new -key "$dir/private/$name.key" -subj "/CN=$name" -out "$dir/$name.csr"
  JOBWORKER_SANS=$joined sign "$dir" "$dir/$name.csr" "$dir/$name.crt" server_extensions -days 397
  echo "$dir/$name.crt"
}

cmd_client() {
  local dir=${1:?usage: pki.sh client DIR CN ROLE} cn=${2:?usage: pki.sh client DIR CN ROLE} role=${3:?usage: pki.sh client DIR CN ROLE}
  shift 3
  check_name "$cn"
  # Tests make certificates with other roles (to prove they are refused): JOBWORKER_PKI_ANY_ROLE=1.
  [[ $role =~ ^(admin|user|viewer)$ || ${JOBWORKER_PKI_ANY_ROLE:-} == 1 ]] || die "role '$role': one of admin, user, viewer"
  [[ -f $dir/ca.crt ]] || die "no CA in $dir (run: pki.sh ca $dir)"
  local days=365 not_before='' not_after=''
  while (($# > 0)); do
    case $1 in
      --days) days=${2:?--days N}; shift 2 ;;
      --not-before) not_before=${2:?--not-before YYYYMMDDHHMMSSZ}; shift 2 ;;
      --not-after) not_after=${2:?--not-after YYYYMMDDHHMMSSZ}; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  local validity=(-days "$days")
  [[ -n $not_after ]] && validity=(-enddate "$not_after")
  [[ -n $not_before ]] && validity+=(-startdate "$not_before")
  new_key "$dir/clients/$cn.key"
  openssl req -new -key "$dir/clients/$cn.key" -subj "/CN=$cn/OU=$role" -out "$dir/clients/$cn.csr"
  sign "$dir" "$dir/clients/$cn.csr" "$dir/clients/$cn.crt" client_extensions "${validity[@]}"
  echo "$dir/clients/$cn.crt"
}

cmd_revoke() {
  local dir=${1:?usage: pki.sh revoke DIR CERT} cert=${2:?usage: pki.sh revoke DIR CERT}
  openssl ca -config "$dir/openssl.cnf" -revoke "$cert" 2>/dev/null || die "cannot revoke $cert"
  cmd_crl "$dir"
}

cmd_crl() {
  local dir=${1:?usage: pki.sh crl DIR}
  openssl ca -config "$dir/openssl.cnf" -gencrl -out "$dir/crl.pem" 2>/dev/null || die "cannot generate the CRL"
  chmod 644 "$dir/crl.pem"
  echo "$dir/crl.pem"
}

command=${1:-}
shift || true
case $command in
  ca) cmd_ca "$@" ;;
  server) cmd_server "$@" ;;
  client) cmd_client "$@" ;;
  revoke) cmd_revoke "$@" ;;
  crl) cmd_crl "$@" ;;
  *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
