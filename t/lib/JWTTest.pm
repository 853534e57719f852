package JWTTest;

# Test helpers for the JWT suites: keys generated with the openssl CLI at
# test time, tokens minted with Perl core modules (Digest::SHA HMAC,
# MIME::Base64, JSON::PP) and openssl for RSA, RSA-PSS, ECDSA and Ed25519
# signatures.  Nothing here shares code with the module: the tokens are an
# independent implementation of JWS.
#
#   use lib 't/lib';
#   use JWTTest;                  # generates keys once per suite run
#   jwt(alg => 'RS256', key => 'rsa', claims => { sub => 'alice' })

use strict;
use warnings;

use Exporter 'import';
use File::Temp qw(tempdir);
use MIME::Base64 qw(encode_base64 decode_base64);
use Digest::SHA qw(hmac_sha256 hmac_sha384 hmac_sha512);
use JSON::PP ();

our @EXPORT = qw(jwt b64u jwt_dir jwt_sign rsa_jwk $SECRET);

# 64 bytes: enough for HS256, HS384 and HS512
our $SECRET = '0123456789abcdef0123456789abcdef'
              . '0123456789abcdef0123456789abcdef';

my $JSON = JSON::PP->new->canonical(1);
my $DIR;


sub b64u {
    my $s = encode_base64(shift, '');
    $s =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}


sub jwt_dir { return $DIR }


sub run {
    my $cmd = shift;
    my $out = `$cmd 2>&1`;
    die "command failed: $cmd\n$out" if $? != 0;
    return $out;
}


sub slurp {
    my $f = shift;
    open my $fh, '<:raw', $f or die "$f: $!";
    local $/;
    my $d = <$fh>;
    close $fh;
    return $d;
}


sub spew {
    my ($f, $d) = @_;
    open my $fh, '>:raw', $f or die "$f: $!";
    print $fh $d;
    close $fh;
}


# the public key's raw bytes at the end of its DER SubjectPublicKeyInfo
sub spki_tail {
    my ($pub, $n) = @_;
    my $der = run("openssl pkey -pubin -in $pub -outform DER | od -An -v -tx1");
    $der =~ s/\s+//g;
    my $bin = pack('H*', $der);
    return substr($bin, -$n);
}


sub gen_keys {
    my $d = shift;

    for my $k (['rsa', 2048], ['rsa2', 2048], ['rsa1024', 1024]) {
        run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:$k->[1]"
            . " -out $d/$k->[0].key");
        run("openssl pkey -in $d/$k->[0].key -pubout -out $d/$k->[0].pub");
    }

    run("openssl req -x509 -new -key $d/rsa.key -subj /CN=test -days 30"
        . " -out $d/rsa.crt");

    for my $k (['ec256', 'P-256'], ['ec384', 'P-384'], ['ec521', 'P-521'],
               ['ec256b', 'P-256'], ['ec384b', 'P-384'], ['ec521b', 'P-521'],
               ['eck1', 'secp256k1'])
    {
        run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:$k->[1]"
            . " -out $d/$k->[0].key");
        run("openssl pkey -in $d/$k->[0].key -pubout -out $d/$k->[0].pub");
    }

    run("openssl genpkey -algorithm ED25519 -out $d/ed25519.key");
    run("openssl pkey -in $d/ed25519.key -pubout -out $d/ed25519.pub");
    run("openssl genpkey -algorithm ED448 -out $d/ed448.key");
    run("openssl pkey -in $d/ed448.key -pubout -out $d/ed448.pub");

    # JWK forms
    my $rsa_n = rsa_modulus("$d/rsa.pub");
    my $rsa2_n = rsa_modulus("$d/rsa2.pub");
    my $ec = spki_tail("$d/ec256.pub", 65);
    my $ed = spki_tail("$d/ed25519.pub", 32);

    my $jwks = {
        keys => [
            { kty => 'RSA', kid => 'rsa-1', alg => 'RS256', use => 'sig',
              n => b64u($rsa_n), e => 'AQAB' },
            { kty => 'RSA', kid => 'rsa-2', n => b64u($rsa2_n), e => 'AQAB' },
            { kty => 'EC', kid => 'ec-1', crv => 'P-256',
              x => b64u(substr($ec, 1, 32)), y => b64u(substr($ec, 33, 32)) },
            { kty => 'OKP', kid => 'ed-1', crv => 'Ed25519', x => b64u($ed) },
            { kty => 'oct', kid => 'hs-1', alg => 'HS256',
              k => b64u($SECRET) },
            { kty => 'RSA', kid => 'enc-1', use => 'enc',
              n => b64u($rsa_n), e => 'AQAB' },
            { kty => 'XYZ', kid => 'odd' },
        ],
    };

    spew("$d/jwks.json", $JSON->encode($jwks));

    # the same Ed25519 key named by RFC 8037 and by RFC 9864
    spew("$d/jwks-ed.json", $JSON->encode({ keys => [
        { kty => 'OKP', kid => 'ed-eddsa', crv => 'Ed25519', alg => 'EdDSA',
          x => b64u($ed) },
        { kty => 'OKP', kid => 'ed-ed25519', crv => 'Ed25519',
          alg => 'Ed25519', x => b64u($ed) } ] }));
    spew("$d/jwks-unusable.json",
         $JSON->encode({ keys => [ { kty => 'XYZ' },
                                   { kty => 'oct', k => b64u('short') } ] }));
    spew("$d/not-json.json", "{ this is not json");
    spew("$d/secret.txt", "$SECRET\n");
    spew("$d/garbage.pem", "hello, I am not a key\n");

    spew("$d/.done", "ok\n");
}


# the RS256 JWK of one of the generated public keys ("rsa.pub")
sub rsa_jwk {
    my ($kid, $pub) = @_;
    return { kty => 'RSA', kid => $kid, alg => 'RS256', use => 'sig',
             n => b64u(rsa_modulus("$DIR/$pub")), e => 'AQAB' };
}


sub rsa_modulus {
    my $pub = shift;
    my $out = run("openssl rsa -pubin -in $pub -noout -modulus");
    $out =~ /Modulus=([0-9A-Fa-f]+)/ or die "no modulus in $out";
    return pack('H*', $1);
}


# DER ECDSA-Sig-Value -> fixed-length R || S (RFC 7518 section 3.4)
sub der_to_raw {
    my ($der, $n) = @_;
    my @b = unpack('C*', $der);
    my $i = 0;

    die "not a SEQUENCE" unless $b[$i++] == 0x30;
    my $len = $b[$i++];
    $i += ($len & 0x7f) if $len & 0x80;

    my @parts;
    for (1 .. 2) {
        die "not an INTEGER" unless $b[$i++] == 0x02;
        my $l = $b[$i++];
        my $v = pack('C*', @b[$i .. $i + $l - 1]);
        $i += $l;
        $v =~ s/^\x00+//;
        die "integer too long" if length($v) > $n;
        push @parts, ("\x00" x ($n - length $v)) . $v;
    }

    return join '', @parts;
}


my %MD = (256 => 'sha256', 384 => 'sha384', 512 => 'sha512');
my %EC = (256 => 32, 384 => 48, 512 => 66);


sub jwt_sign {
    my ($alg, $key, $data) = @_;

    if ($alg =~ /^HS(\d+)$/) {
        my $f = { 256 => \&hmac_sha256, 384 => \&hmac_sha384,
                  512 => \&hmac_sha512 }->{$1};
        return $f->($data, $key);
    }

    my $k = $key =~ m{/} ? $key : "$DIR/$key.key";
    my $in = "$DIR/in.$$";
    my $out = "$DIR/sig.$$";
    spew($in, $data);

    if ($alg =~ /^RS(\d+)$/) {
        run("openssl dgst -$MD{$1} -sign $k -out $out $in");

    } elsif ($alg =~ /^PS(\d+)$/) {
        run("openssl dgst -$MD{$1} -sign $k -sigopt rsa_padding_mode:pss"
            . " -sigopt rsa_pss_saltlen:digest -out $out $in");

    } elsif ($alg =~ /^ES(\d+)$/) {
        run("openssl dgst -$MD{$1} -sign $k -out $out $in");
        my $sig = der_to_raw(slurp($out), $EC{$1});
        unlink $in, $out;
        return $sig;

    } elsif ($alg eq 'EdDSA' || $alg eq 'Ed25519') {
        run("openssl pkeyutl -sign -inkey $k -rawin -in $in -out $out");

    } else {
        die "cannot sign $alg";
    }

    my $sig = slurp($out);
    unlink $in, $out;
    return $sig;
}


# jwt(alg => 'RS256', key => 'rsa' | secret => '...', header => {...},
#     claims => {...}, raw_header => '...', raw_payload => '...',
#     sign_alg => 'HS256', sig => '...')
#
# A header or claim given as undef is removed from the defaults
# (typ "JWT"; sub "alice", exp in an hour).

sub jwt {
    my %o = @_;

    my %h = (alg => $o{alg}, typ => 'JWT', %{ $o{header} || {} });
    my %c = (sub => 'alice', exp => time + 3600, %{ $o{claims} || {} });

    for my $m (\%h, \%c) {
        delete $m->{$_} for grep { !defined $m->{$_} } keys %$m;
    }

    my $header = defined $o{raw_header} ? $o{raw_header} : $JSON->encode(\%h);
    my $payload = defined $o{raw_payload} ? $o{raw_payload}
                                          : $JSON->encode(\%c);

    my $input = b64u($header) . '.' . b64u($payload);

    my $sig = $o{sig};

    if (!defined $sig) {
        my $alg = $o{sign_alg} || $o{alg};
        my $key = defined $o{secret} ? $o{secret}
                  : defined $o{key} ? $o{key}
                  : $SECRET;
        $sig = jwt_sign($alg, $key, $input);
    }

    return $input . '.' . b64u($sig);
}


# keys once per suite run; TEST_NGINX_JWT_DIR may point at a directory
# with keys already generated by an earlier suite
$DIR = $ENV{TEST_NGINX_JWT_DIR};

if (!$DIR || !-e "$DIR/.done") {
    $DIR ||= tempdir('apipolicy-jwt-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    gen_keys($DIR);
}

$ENV{TEST_NGINX_JWT_DIR} = $DIR;
$ENV{TEST_NGINX_JWT_SECRET} = $SECRET;


1;
