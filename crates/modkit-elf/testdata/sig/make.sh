#!/bin/sh
# Makes the signature fixtures: hello_api.ko (kmods/fixtures/6.1, unsigned) signed as the kernel's
# scripts/sign-file does (CMS SignedData, detached, binary, no certificates, issuer and serial;
# no signed attributes unless asked), with throwaway keys that are not kept. Run from anywhere;
# the outputs are committed, so a run changes every file (new keys).
set -eu
cd "$(dirname "$0")"
module=../../../../kmods/fixtures/6.1/hello_api.ko
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# key NAME SUBJECT SERIAL [ALGORITHM OPTIONS]: a self-signed certificate (RSA-2048 unless
# told), NAME.x509 (DER) here.
key() {
    openssl req -x509 -newkey "${4:-rsa:2048}" ${5:+-pkeyopt "$5"} -nodes \
        -keyout "$tmp/$1.key" -subj "$2" -set_serial "$3" -days 36500 -out "$tmp/$1.pem" 2>/dev/null
    openssl x509 -in "$tmp/$1.pem" -outform DER -out "$1.x509"
}
key trusted "/O=modkit/CN=modkit test signing key" 0x4d4f444b4954
# The same issuer and serial as trusted.x509, another key: the kernel finds the key and the
# signature fails (EKEYREJECTED).
key impostor "/O=modkit/CN=modkit test signing key" 0x4d4f444b4954
# A key the target does not have (ENOKEY).
key stranger "/O=elsewhere/CN=another signing key" 2
openssl x509 -in "$tmp/trusted.pem" -out trusted.pem
# ECDSA keys, as Debian 6.12's build key (P-384).
key p384 "/CN=modkit test P-384 key" 0x0384 ec ec_paramgen_curve:secp384r1
key p256 "/CN=modkit test P-256 key" 0x0256 ec ec_paramgen_curve:prime256v1

# sign KEY HASH OUT [openssl cms options]: the module with the kernel's signature trailer.
sign() {
    key=$1 hash=$2 out=$3
    shift 3
    openssl cms -sign -binary -nocerts -nosmimecap -md "$hash" "$@" \
        -signer "$tmp/$key.pem" -inkey "$tmp/$key.key" -in "$module" -outform DER -out "$tmp/sig"
    len=$(wc -c <"$tmp/sig")
    {
        cat "$module" "$tmp/sig"
        # struct module_signature: algo, hash, id_type 2 (PKCS#7), signer_len, key_id_len,
        # pad[3], be32 sig_len.
        printf '\0\0\2\0\0\0\0\0'
        printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((len >> 24 & 255)) $((len >> 16 & 255)) \
            $((len >> 8 & 255)) $((len & 255)))"
        printf '~Module signature appended~\n'
    } >"$out"
}
sign trusted sha256 hello_api.sha256.ko -noattr
sign trusted sha512 hello_api.sha512-attrs.ko
sign impostor sha256 hello_api.impostor.ko -noattr
sign stranger sha256 hello_api.stranger.ko -noattr
sign p384 sha256 hello_api.p384.ko -noattr
sign p256 sha256 hello_api.p256.ko -noattr
# One byte of the signed content changed (in .comment: "GCC" -> "GCc").
sed 's/GCC: (Debian/GCc: (Debian/' hello_api.sha256.ko >hello_api.tampered.ko
cmp -s hello_api.sha256.ko hello_api.tampered.ko && { echo "tampering changed nothing" >&2; exit 1; }
# A trailer whose sig_len runs past the start of the file (EBADMSG).
{
    cat "$module"
    printf '\0\0\2\0\0\0\0\0\177\0\0\0~Module signature appended~\n'
} >hello_api.bad-trailer.ko
