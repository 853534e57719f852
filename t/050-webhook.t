# Webhook signatures over the raw body: Standard Webhooks, Stripe,
# GitHub, Slack, Shopify and generic HMAC, timestamp tolerance, secret
# rotation, several signatures in one header, bodies buffered to disk,
# replays, configuration errors.  Signatures are computed here with
# Digest::SHA, independently of the module.
use Test::Nginx::Socket 'no_plan';
use Digest::SHA qw(hmac_sha256 hmac_sha256_hex);
use MIME::Base64 qw(encode_base64 decode_base64);

our $KEY = "0123456789abcdef0123456789abcdef";          # 32 bytes
our $WHSEC = "whsec_" . encode_base64($KEY, '');
our $OLD = "old-secret-old-secret-old-secret";
our $BODY = '{"type":"invoice.paid","id":"evt_1"}';

sub b64 { return encode_base64(shift, '') }

sub standard {
    my (%o) = @_;
    my $id = $o{id} // 'msg_1';
    my $ts = $o{ts} // time;
    my $body = $o{body} // $BODY;
    my $sig = b64(hmac_sha256("$id.$ts.$body", $o{key} // $KEY));
    my $sigs = $o{sigs} // "v1,$sig";
    return ["POST /standard\n$body",
            "webhook-id: $id\r\nwebhook-timestamp: $ts\r\nwebhook-signature: $sigs\r\n"];
}

sub stripe {
    my (%o) = @_;
    my $ts = $o{ts} // time;
    my $body = $o{body} // $BODY;
    my $sig = hmac_sha256_hex("$ts.$BODY", $o{secret} // $main::WHSEC);
    return ["POST /stripe\n$body", "Stripe-Signature: t=$ts,v1=$sig,v0=00\r\n"];
}

master_on();
workers(2);
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    if (defined $block->config && $block->config !~ m{location /backend \{}) {
        $block->set_value("config", $block->config . <<'_EOC_');
    location /backend { return 200 "ok $content_length\n"; }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: Standard Webhooks: a good delivery, a bad signature, missing headers, a stale timestamp
--- config eval
"location /standard {
    apipolicy_webhook standard secret=$main::WHSEC;
    proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
}"
--- request eval
[main::standard()->[0], main::standard()->[0], main::standard()->[0],
 main::standard()->[0], main::standard()->[0]]
--- more_headers eval
[main::standard()->[1],
 main::standard(key => "x" x 32)->[1],
 "webhook-id: msg_1\r\nwebhook-timestamp: " . time . "\r\n",
 main::standard(ts => time - 600)->[1],
 main::standard(body => '{"type":"invoice.paid","id":"evt_2"}')->[1]]
--- error_code eval
[200, 401, 401, 401, 401]
--- response_body_like eval
["^ok 36\n\$",
 '"detail":"no signature matches the body and a secret","code":"SIGNATURE_INVALID"',
 '"detail":"the webhook-signature header is missing","code":"SIGNATURE_MISSING"',
 '"code":"TIMESTAMP_OUT_OF_TOLERANCE"',
 '"code":"SIGNATURE_INVALID"']



=== TEST 2: Standard Webhooks: several signatures (one good), two secrets (rotation)
--- config eval
"location /standard {
    apipolicy_webhook standard secret=$main::WHSEC secret=base64:" . main::b64($main::OLD) . ";
    proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
}"
--- request eval
[main::standard()->[0], main::standard()->[0]]
--- more_headers eval
[main::standard(sigs => "v1,AAAA v1a,xyz v1," . main::b64(Digest::SHA::hmac_sha256("msg_1." . time . ".$main::BODY", $main::KEY)))->[1],
 main::standard(key => $main::OLD)->[1]]
--- error_code eval
[200, 200]



=== TEST 3: Stripe: t= and v1=, the whsec_ secret used as it is; a tampered body
--- config eval
"location /stripe {
    apipolicy_webhook stripe secret=$main::WHSEC;
    proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
}"
--- request eval
[main::stripe()->[0], main::stripe(body => '{"type":"invoice.paid","id":"evt_9"}')->[0],
 main::stripe()->[0]]
--- more_headers eval
[main::stripe()->[1], main::stripe()->[1],
 main::stripe(ts => time - 3600)->[1]]
--- error_code eval
[200, 401, 401]
--- response_body_like eval
["^ok 36\n\$", "SIGNATURE_INVALID", "TIMESTAMP_OUT_OF_TOLERANCE"]



=== TEST 4: GitHub, Slack, Shopify and a generic HMAC header
--- config eval
"location /github {
    apipolicy_webhook github secret=$main::OLD;
    proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
}
location /slack {
    apipolicy_webhook slack secret=$main::OLD tolerance=1m;
    proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
}
location /shopify {
    apipolicy_webhook shopify secret=$main::OLD;
    proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
}
location /hmac {
    apipolicy_webhook hmac secret=$main::OLD header=X-Signature prefix=hmac-sha256= encoding=base64;
    proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
}"
--- request eval
["POST /github\n$main::BODY", "POST /github\n$main::BODY",
 "POST /slack\n$main::BODY", "POST /shopify\n$main::BODY",
 "POST /hmac\n$main::BODY", "POST /hmac\n$main::BODY"]
--- more_headers eval
my $t = time;
["X-Hub-Signature-256: sha256=" . Digest::SHA::hmac_sha256_hex($main::BODY, $main::OLD),
 "X-Hub-Signature-256: sha1=" . Digest::SHA::hmac_sha256_hex($main::BODY, $main::OLD),
 "X-Slack-Request-Timestamp: $t\r\nX-Slack-Signature: v0=" . Digest::SHA::hmac_sha256_hex("v0:$t:$main::BODY", $main::OLD),
 "X-Shopify-Hmac-Sha256: " . main::b64(Digest::SHA::hmac_sha256($main::BODY, $main::OLD)),
 "X-Signature: hmac-sha256=" . main::b64(Digest::SHA::hmac_sha256($main::BODY, $main::OLD)),
 "X-Signature: " . main::b64(Digest::SHA::hmac_sha256($main::BODY, $main::OLD))]
--- error_code eval
[200, 401, 200, 200, 200, 401]
--- response_body_like eval
["^ok 36\n\$", '"detail":"the signature header holds no signature of the expected form"',
 "^ok 36\n\$", "^ok 36\n\$", "^ok 36\n\$", "SIGNATURE_INVALID"]



=== TEST 5: a body buffered to a temporary file is verified, and reaches the upstream whole
--- config eval
"location /github {
    client_body_buffer_size 1k;
    client_max_body_size 1m;
    apipolicy_webhook github secret=$main::OLD;
    proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
}"
--- request eval
"POST /github\n" . ("x" x 65536)
--- more_headers eval
"X-Hub-Signature-256: sha256=" . Digest::SHA::hmac_sha256_hex("x" x 65536, $main::OLD)
--- response_body
ok 65536
--- error_log
a client request body is buffered to a temporary file



=== TEST 6: replays: a delivered id is refused; a delivery the upstream failed may come again
--- http_config
    apipolicy_webhook_zone hooks:1m;
--- config eval
"location /standard {
    apipolicy_webhook standard secret=$main::WHSEC replay_zone=hooks;
    proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
}
location /failing {
    apipolicy_webhook standard secret=$main::WHSEC replay_zone=hooks;
    proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend500;
}
location /backend500 { return 500; }"
--- request eval
[main::standard(id => "a")->[0], main::standard(id => "a")->[0],
 main::standard(id => "b")->[0] =~ s{/standard}{/failing}r,
 main::standard(id => "b")->[0], main::standard(id => "b")->[0]]
--- more_headers eval
[main::standard(id => "a")->[1], main::standard(id => "a")->[1],
 main::standard(id => "b")->[1], main::standard(id => "b")->[1],
 main::standard(id => "b")->[1]]
--- error_code eval
[200, 409, 500, 200, 409]
--- response_body_like eval
["^ok", '"code":"WEBHOOK_REPLAYED"', "", "^ok", "WEBHOOK_REPLAYED"]



=== TEST 7: config: unknown scheme
--- config
    location /h { apipolicy_webhook paypal secret=x; }
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown webhook scheme "paypal": use standard, stripe, github, slack, shopify or hmac/



=== TEST 8: config: secret= is required
--- config
    location /h { apipolicy_webhook github; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"secret=" is required/



=== TEST 9: config: tolerance= on a scheme without timestamps
--- config
    location /h { apipolicy_webhook github secret=abc tolerance=5m; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"github" deliveries carry no timestamp: tolerance= does not apply/



=== TEST 10: config: hmac without header=; header= on another scheme
--- config
    location /h { apipolicy_webhook hmac secret=abc; }
--- must_die
--- error_log eval
qr/\[emerg\] .*the hmac scheme needs "header="/



=== TEST 11: config: header= belongs to hmac
--- config
    location /h { apipolicy_webhook stripe secret=abc header=X-Sig; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid parameter "header=X-Sig": header=, prefix= and encoding= belong to the hmac scheme/



=== TEST 12: config: unknown replay zone, a whsec_ secret that is not base64
--- config
    location /h { apipolicy_webhook standard secret=abc replay_zone=nope; }
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown replay zone "nope": declare it with apipolicy_webhook_zone/



=== TEST 13: config: whsec_ must hold base64
--- config
    location /h { apipolicy_webhook standard secret=whsec_!!!; }
--- must_die
--- error_log eval
qr/\[emerg\] .*a Standard Webhooks secret is base64, with or without "whsec_" in front \(inline or in the file:\): "secret=whsec_!!!" is not/



=== TEST 14: secrets of every length: 1 byte, 64 (one SHA-256 block), 65 and 200 (hashed first, RFC 2104)
--- config eval
my $c = "";
for my $n (1, 64, 65, 200) {
    my $s = "k" x $n;
    $c .= "location /h$n { apipolicy_webhook github secret=$s; proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend; }\n";
}
$c
--- request eval
["POST /h1\n$main::BODY", "POST /h64\n$main::BODY", "POST /h65\n$main::BODY", "POST /h200\n$main::BODY",
 "POST /h200\n$main::BODY"]
--- more_headers eval
["X-Hub-Signature-256: sha256=" . Digest::SHA::hmac_sha256_hex($main::BODY, "k"),
 "X-Hub-Signature-256: sha256=" . Digest::SHA::hmac_sha256_hex($main::BODY, "k" x 64),
 "X-Hub-Signature-256: sha256=" . Digest::SHA::hmac_sha256_hex($main::BODY, "k" x 65),
 "X-Hub-Signature-256: sha256=" . Digest::SHA::hmac_sha256_hex($main::BODY, "k" x 200),
 "X-Hub-Signature-256: sha256=" . Digest::SHA::hmac_sha256_hex($main::BODY, "k" x 199)]
--- error_code eval
[200, 200, 200, 200, 401]



=== TEST 15: a body that comes after its headers (its second half 0.3 s later) is read without blocking, verified, and reaches the upstream whole
--- config eval
"location /github {
    apipolicy_webhook github secret=$main::OLD;
    proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
}"
--- raw_request eval
my $sig = Digest::SHA::hmac_sha256_hex("y" x 100, $main::OLD);
["POST /github HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 100\r\nX-Hub-Signature-256: sha256=$sig\r\n\r\n" . ("y" x 50), "y" x 50]
--- raw_request_middle_delay: 0.3
--- response_body
ok 100



=== TEST 16: ... and a late body whose signature does not match is refused
--- config eval
"location /github {
    apipolicy_webhook github secret=$main::OLD;
    proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
}"
--- raw_request eval
my $sig = Digest::SHA::hmac_sha256_hex("y" x 99 . "z", $main::OLD);
["POST /github HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 100\r\nX-Hub-Signature-256: sha256=$sig\r\n\r\n" . ("y" x 50), "y" x 50]
--- raw_request_middle_delay: 0.3
--- error_code: 401
--- response_body_like chomp
"code":"SIGNATURE_INVALID"
