#!/bin/bash
# Called by bench/run.sh with its scratch folder: generates the keys and
# tokens the JWT scenarios use, with the same independent JWS minting the
# test suites use (t/lib/JWTTest.pm: openssl and Perl core modules).
set -euo pipefail
cd "$(dirname "$0")/.."

work=$1
mkdir -p "$work/keys"

TEST_NGINX_JWT_DIR=$work/keys perl -It/lib -MJWTTest -e '
    my $dir = JWTTest::jwt_dir();
    my %t = (
        hs256 => jwt(alg => "HS256", claims => { sub => "bench", exp => time + 86400 }),
        rs256 => jwt(alg => "RS256", key => "rsa", claims => { sub => "bench", exp => time + 86400 }),
        full => jwt(alg => "HS256", claims => { sub => "bench", plan => "pro", exp => time + 86400 }),
    );
    for my $k (keys %t) {
        open my $fh, ">", "$dir/$k.jwt" or die $!;
        print $fh $t{$k};
        close $fh;
    }
    open my $fh, ">", "$dir/hs256.secret" or die $!;
    print $fh $JWTTest::SECRET;
    close $fh;
'

# the scenarios' config refers to @WORK@ (this folder) and @SECRET@
secret=$(cat "$work/keys/hs256.secret")
sed -i -e "s|@WORK@|$work|g" -e "s|@SECRET@|$secret|g" \
    "$work"/bench/*.conf

# the webhook scenario: a GitHub delivery signed with the bench secret
printf '%s' '{"amount":10,"currency":"EUR"}' > "$work/keys/webhook.body"
openssl dgst -sha256 -hmac "$secret" "$work/keys/webhook.body" \
    | awk '{print "sha256=" $NF}' > "$work/keys/webhook.sig"
