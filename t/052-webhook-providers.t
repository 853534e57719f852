# Webhooks as each provider's SDK sends them: Standard Webhooks secrets
# in every form the SDKs accept (whsec_ inline, in a file, bare base64),
# Svix/Clerk's svix-* headers, Shopify's headers without X-, a signature
# header with more than eight signatures, the WWW-Authenticate challenge
# of every 401, replay keys nobody can vary without the secret,
# identical deliveries sent at the same moment, and a replay zone
# filled by other deliveries while one is in flight, against a real
# slow backend (a Perl server on a free port that counts its calls).
use Test::Nginx::Socket 'no_plan';
use Digest::SHA qw(hmac_sha256 hmac_sha256_hex);
use MIME::Base64 qw(encode_base64);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(sleep);

our $KEY = "0123456789abcdef0123456789abcdef";
our $B64 = encode_base64($KEY, '');
our $OLD = "old-secret-old-secret-old-secret";
our $BODY = '{"type":"invoice.paid","id":"evt_1"}';

$ENV{TEST_NGINX_HOOK_DIR} ||= tempdir('apipolicy-hooks-XXXXXX', TMPDIR => 1,
                                      CLEANUP => 1);
our $DIR = $ENV{TEST_NGINX_HOOK_DIR};

sub spew {
    my ($f, $d) = @_;
    open my $fh, '>', "$DIR/$f" or die "$f: $!";
    print $fh $d;
    close $fh;
}

spew("whsec.txt", "whsec_$B64\n");
spew("bare.txt", "$B64\n");

sub b64 { return encode_base64(shift, '') }

sub std_headers {
    my (%o) = @_;
    my $p = $o{prefix} // 'webhook';
    my $id = $o{id} // 'msg_1';
    my $ts = $o{ts} // time;
    my $sig = b64(hmac_sha256("$id.$ts." . ($o{body} // $BODY), $o{key} // $KEY));
    $sig = $o{sigs} . " v1,$sig" if defined $o{sigs};
    return "$p-id: $id\r\n$p-timestamp: $ts\r\n$p-signature: v1,$sig\r\n"
        if !defined $o{sigs};
    return "$p-id: $id\r\n$p-timestamp: $ts\r\n$p-signature: $sig\r\n";
}

# the backend: waits ms= milliseconds, answers status= (200), counts calls
our $CALLS = "$DIR/calls";

my $srv = IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1',
                                LocalPort => 0, ReuseAddr => 1)
    or die "backend: $!";
$ENV{TEST_NGINX_HOOK_PORT} = $srv->sockport;
our $BACKEND = fork();
die "fork: $!" unless defined $BACKEND;

if ($BACKEND == 0) {
    $SIG{CHLD} = 'IGNORE';
    while (1) {
        my $c = $srv->accept or next;
        my $kid = fork();
        if (!defined $kid || $kid) { close $c; next; }
        # a long wait does not hold the harness's output open
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        my $buf = '';
        while ($buf !~ /\r\n\r\n/) {
            my $n = sysread $c, $buf, 8192, length $buf;
            POSIX::_exit(0) if !$n;
        }
        my ($line) = $buf =~ /^(\S+ \S+)/;
        my %q = $line =~ /[?&](\w+)=(\d+)/g;
        open my $f, '>>', $CALLS or die;
        print $f "$line\n";
        close $f;
        sleep(($q{ms} // 0) / 1000);
        my $st = $q{status} // 200;
        syswrite $c, "HTTP/1.1 $st X\r\nContent-Length: 3\r\n"
                     . "Connection: close\r\n\r\nok\n";
        close $c;
        POSIX::_exit(0);
    }
}

close $srv;

END { local $?; if ($BACKEND) { kill "KILL", $BACKEND; waitpid($BACKEND, 0) } }

sub calls {
    my $re = shift;
    open my $f, '<', $CALLS or return 0;
    my $n = grep { /$re/ } <$f>;
    close $f;
    return $n;
}

# one POST straight to nginx; close_after: the client goes away then
sub post {
    my ($path, $headers, %o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => Test::Nginx::Util::server_port())
        or die "connect: $!";
    print $s "POST $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
             . "Content-Length: " . length($BODY) . "\r\n$headers\r\n$BODY";
    if ($o{close_after}) {
        sleep $o{close_after};
        close $s;
        return 0;
    }
    local $/;
    my $r = <$s> // '';
    close $s;
    return $r =~ m{^HTTP/1\.1 (\d+)} ? $1 : 0;
}

# the same delivery from n clients at once: the statuses, sorted
sub at_once {
    my ($n, $path, $headers) = @_;
    my @pipes;
    for (1 .. $n) {
        pipe(my $r, my $w) or die;
        my $pid = fork();
        if ($pid == 0) { close $r; syswrite $w, post($path, $headers); POSIX::_exit(0) }
        close $w;
        push @pipes, [$pid, $r];
    }
    my @st;
    for (@pipes) { my $fh = $_->[1]; push @st, scalar <$fh>; waitpid($_->[0], 0) }
    return join ",", sort @st;
}

master_on();
workers(2);
no_shuffle();

run_tests();

__DATA__

=== TEST 1: Standard Webhooks secrets read alike however given: whsec_ inline, whsec_ in a file, bare base64 inline and in a file, base64:
--- config
    location /w1 { apipolicy_webhook standard secret=whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/; }
    location /w2 { apipolicy_webhook standard secret=file:$TEST_NGINX_HOOK_DIR/whsec.txt; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/; }
    location /w3 { apipolicy_webhook standard secret=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/; }
    location /w4 { apipolicy_webhook standard secret=file:$TEST_NGINX_HOOK_DIR/bare.txt; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/; }
    location /w5 { apipolicy_webhook standard secret=base64:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/; }
--- request eval
[map { "POST /w$_\n$main::BODY" } 1 .. 5]
--- more_headers eval
[map { main::std_headers() } 1 .. 5]
--- error_code eval
[200, 200, 200, 200, 200]



=== TEST 2: a Standard Webhooks secret that is not base64 fails nginx -t
--- config
    location /w { apipolicy_webhook standard secret=not-base64-at-all!; }
--- must_die
--- error_log eval
qr/\[emerg\] .*a Standard Webhooks secret is base64, with or without "whsec_" in front \(inline or in the file:\): "secret=not-base64-at-all!" is not in .*nginx\.conf:\d+/



=== TEST 3: Svix and Clerk: svix-id, svix-timestamp, svix-signature; the webhook-* family wins when both are sent
--- config
    location /svix { apipolicy_webhook standard secret=whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/; }
--- request eval
[map { "POST /svix\n$main::BODY" } 1 .. 4]
--- more_headers eval
[main::std_headers(prefix => 'svix'),
 main::std_headers(prefix => 'svix', key => $main::OLD),
 main::std_headers() . "svix-id: x\r\nsvix-signature: v1,junk\r\n",
 main::std_headers(prefix => 'svix') =~ s/svix-id: [^\r]*\r\n//r]
--- error_code eval
[200, 401, 200, 401]
--- response_body_like eval
["^ok", "SIGNATURE_INVALID", "^ok", '"detail":"the svix-id header is missing","code":"SIGNATURE_MISSING"']



=== TEST 4: Shopify without X-: shopify-hmac-sha256 (and shopify-webhook-id) beside X-Shopify-Hmac-Sha256
--- config
    location /shopify { apipolicy_webhook shopify secret=old-secret-old-secret-old-secret; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/; }
--- request eval
[map { "POST /shopify\n$main::BODY" } 1 .. 3]
--- more_headers eval
my $s = main::b64(Digest::SHA::hmac_sha256($main::BODY, $main::OLD));
["shopify-hmac-sha256: $s\r\nshopify-webhook-id: b54557e4",
 "X-Shopify-Hmac-Sha256: $s\r\nX-Shopify-Webhook-Id: b54557e4",
 "shopify-hmac-sha256: " . main::b64("x" x 32)]
--- error_code eval
[200, 200, 401]



=== TEST 5: no limit of eight signatures: the good one twelfth in webhook-signature, eleventh v1= in Stripe-Signature
--- config
    location /standard { apipolicy_webhook standard secret=whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/; }
    location /stripe { apipolicy_webhook stripe secret=old-secret-old-secret-old-secret; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/; }
--- request eval
["POST /standard\n$main::BODY", "POST /stripe\n$main::BODY"]
--- more_headers eval
my $t = time;
my $bad = CORE::join " ", map { "v1," . main::b64(Digest::SHA::hmac_sha256("n$_", "k")) } 1 .. 11;
["webhook-id: msg_1\r\nwebhook-timestamp: $t\r\nwebhook-signature: $bad v1,"
 . main::b64(Digest::SHA::hmac_sha256("msg_1.$t.$main::BODY", $main::KEY)),
 "Stripe-Signature: t=$t," . CORE::join(",", map { "v1=" . Digest::SHA::hmac_sha256_hex("n$_", "k") } 1 .. 10)
 . ",v1=" . Digest::SHA::hmac_sha256_hex("$t.$main::BODY", $main::OLD)]
--- error_code eval
[200, 200]



=== TEST 6: every 401 of the webhook area carries WWW-Authenticate: Webhook-Signature, naming the provider and the header
--- config
    location /github { apipolicy_webhook github secret=old-secret-old-secret-old-secret; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/; }
    location /hmac { apipolicy_webhook hmac secret=old-secret-old-secret-old-secret header=X-Sig; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/; }
    location /standard { apipolicy_webhook standard secret=whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/; }
--- request eval
["POST /github\n$main::BODY", "POST /hmac\n$main::BODY", "POST /standard\n$main::BODY"]
--- more_headers eval
["", "X-Sig: 00", main::std_headers(ts => time - 3600)]
--- error_code eval
[401, 401, 401]
--- response_headers_like eval
['WWW-Authenticate: Webhook-Signature provider="github", header="X-Hub-Signature-256"',
 'WWW-Authenticate: Webhook-Signature provider="hmac", header="X-Sig"',
 'WWW-Authenticate: Webhook-Signature provider="standard", header="webhook-signature"']



=== TEST 7: replays are keyed on what the secret signs: an added v0=, upper-case hex or another X-GitHub-Delivery do not make a new delivery
--- http_config
    apipolicy_webhook_zone hooks:1m;
--- config
    location /stripe { apipolicy_webhook stripe secret=old-secret-old-secret-old-secret replay_zone=hooks; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/; }
    location /github { apipolicy_webhook github secret=old-secret-old-secret-old-secret replay_zone=hooks; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/; }
--- request eval
[("POST /stripe\n$main::BODY") x 3, ("POST /github\n$main::BODY") x 4]
--- more_headers eval
my $t = time;
my $ss = "Stripe-Signature: t=$t,v1=" . Digest::SHA::hmac_sha256_hex("$t.$main::BODY", $main::OLD);
my $gh = Digest::SHA::hmac_sha256_hex($main::BODY, $main::OLD);
[$ss, "$ss,v0=00", $ss =~ s/v1=(\w+)/"v1=" . uc $1/er,
 "X-Hub-Signature-256: sha256=$gh\r\nX-GitHub-Delivery: 1",
 "X-Hub-Signature-256: sha256=$gh\r\nX-GitHub-Delivery: 2",
 "X-Hub-Signature-256: sha256=" . uc($gh) . "\r\nX-GitHub-Delivery: 3",
 "X-Hub-Signature-256: sha256=$gh"]
--- error_code eval
[200, 409, 409, 200, 409, 409, 409]



=== TEST 8: three identical deliveries at once: one reaches the upstream, two get 409; a failed or abandoned delivery gives its id back
--- http_config
    apipolicy_webhook_zone hooks:1m;
--- config
    location /slow { apipolicy_webhook standard secret=whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY= replay_zone=hooks; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/slow?ms=800; }
    location /failing { apipolicy_webhook standard secret=whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY= replay_zone=hooks; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/failing?ms=800&status=503; }
--- init
my $h = main::std_headers(id => 'msg_at_once');
Test::More::is(main::at_once(3, '/slow', $h), "200,409,409", "at once: one 200, two 409");
Test::More::is(main::calls(qr{^POST /slow}), 1, "at once: the upstream called once");
Test::More::is(main::post('/slow', $h), 409, "at once: a later copy is a replay");

$h = main::std_headers(id => 'msg_fail');
Test::More::is(main::at_once(3, '/failing', $h), "409,409,503", "failing: one 503, two 409");
Test::More::is(main::post('/slow', $h), 200, "failing: the provider's retry gets through");
Test::More::is(main::post('/slow', $h), 409, "failing: then it was delivered");

$h = main::std_headers(id => 'msg_gone');
main::post('/slow', $h, close_after => 0.3);
sleep 1;
Test::More::is(main::post('/slow', $h), 200, "client gone: the id was given back");
--- request
GET /nothing
--- error_code: 404
--- no_error_log
[alert]



=== TEST 9: a full replay zone never frees the claim of a delivery still in flight: 600 other deliveries while it waits on the upstream, then a copy of it is a replay and the upstream sees it once
--- http_config
    apipolicy_webhook_zone hooks:32k;
--- config
    location /inflight { apipolicy_webhook standard secret=whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY= replay_zone=hooks; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/inflight?ms=15000; }
    location /flood { apipolicy_webhook standard secret=whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY= replay_zone=hooks; proxy_pass http://127.0.0.1:$TEST_NGINX_HOOK_PORT/flood; }
--- init
my $h = main::std_headers(id => 'msg_in_flight');
my $pid = fork();
if ($pid == 0) { main::post('/inflight', $h); POSIX::_exit(0) }
sleep 0.5 while main::calls(qr{^POST /inflight}) == 0;
my %st;
$st{ main::post('/flood', main::std_headers(id => "msg_flood_$_")) }++ for 1 .. 600;
Test::More::is(join(',', map { "$_=$st{$_}" } sort keys %st), '200=600',
               "full zone: the other deliveries accepted");
Test::More::is(waitpid($pid, POSIX::WNOHANG()), 0,
               "full zone: the first delivery is still in flight");
Test::More::is(main::post('/inflight', $h), 409,
               "full zone: a copy of the delivery in flight is a replay");
Test::More::is(main::calls(qr{^POST /inflight}), 1,
               "full zone: the upstream saw the delivery in flight once");
kill 'KILL', $pid;
waitpid($pid, 0);
--- request
GET /nothing
--- error_code: 404
--- no_error_log
[alert]
