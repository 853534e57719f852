# Redis over TLS (tls=on) through nginx's own SSL layer, against real
# redis-servers that listen on a TLS port only, with a CA the suite makes
# with openssl: the server verified against the CA, refused (logged once,
# naming the reason) with another CA or another name, mutual TLS with a
# client certificate, and nginx -t without a CA to verify against.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use RedisTest qw(start_redis cli rl_count redis_dir);

our $D = redis_dir();

# the CA, another CA, a server certificate for 127.0.0.1 and localhost,
# a client certificate
sub openssl { system("openssl @_ >/dev/null 2>&1") == 0 or die "openssl @_ failed" }

for my $ca ('ca', 'other-ca') {
    openssl("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=apipolicy-test-$ca"
            . " -keyout $D/$ca.key -out $D/$ca.crt");
}

for my $c (['server', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
           ['client', 'extendedKeyUsage=clientAuth'])
{
    my ($name, $ext) = @$c;
    open my $fh, '>', "$D/$name.ext" or die;
    print $fh "$ext\n";
    close $fh;
    openssl("req -newkey rsa:2048 -nodes -subj /CN=$name -keyout $D/$name.key -out $D/$name.csr");
    openssl("x509 -req -in $D/$name.csr -CA $D/ca.crt -CAkey $D/ca.key -CAcreateserial"
            . " -days 2 -extfile $D/$name.ext -out $D/$name.crt");
}

chmod 0644, glob("$D/*.key");

sub tls_conf {
    my ($port, $auth) = @_;
    return ['port 0', "tls-port $port", "tls-cert-file $D/server.crt",
            "tls-key-file $D/server.key", "tls-ca-cert-file $D/ca.crt",
            "tls-auth-clients $auth"];
}

# one server that asks for no client certificate, one that requires it
our $TLS = RedisTest::free_port();
our @TLS_CLI = ('--tls', '--cacert', "$D/ca.crt", '--cert', "$D/client.crt",
                '--key', "$D/client.key", '-p', $TLS);
start_redis('tls', port => $TLS, no_port => 1, conf => tls_conf($TLS, 'no'),
            ready => \@TLS_CLI);

our $MTLS = RedisTest::free_port();
our @MTLS_CLI = ('--tls', '--cacert', "$D/ca.crt", '--cert', "$D/client.crt",
                 '--key', "$D/client.key", '-p', $MTLS);
start_redis('mtls', port => $MTLS, no_port => 1, conf => tls_conf($MTLS, 'yes'),
            ready => \@MTLS_CLI);

$ENV{TEST_NGINX_TLS_PORT} = $TLS;
$ENV{TEST_NGINX_MTLS_PORT} = $MTLS;
$ENV{TEST_NGINX_CERTS} = $D;

check_accum_error_log();
master_on();
workers(1);
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    if (defined $block->http_config && $block->http_config =~ /apipolicy_redis /) {
        $block->set_value("http_config", $block->http_config . <<'_EOC_');
    apipolicy_ratelimit_zone api:1m sync=50ms;
    apipolicy_ratelimit_tier default rate=100r/m;
_EOC_
        $block->set_value("config", <<'_EOC_');
    location /backend { return 200 "ok\n"; }
    location /status { apipolicy_status; }
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: verified against the CA (the address's IP in the certificate): the counts reach the TLS-only Redis
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_TLS_PORT tls=on timeout=1s;
    apipolicy_redis_ssl_trusted_certificate $TEST_NGINX_CERTS/ca.crt;
--- request eval
["GET /api?k=tls", "GET /api?k=tls"]
--- response_body_filters eval
sub { return $_[0] . "count: " . RedisTest::rl_count(\@main::TLS_CLI, "api:default:tls", $main::want++) . "\n" }
--- response_body eval
["ok\ncount: 1\n", "ok\ncount: 2\n"]
--- no_error_log
[error]
--- init
$main::want = 1;



=== TEST 2: apipolicy_redis_ssl_name localhost (SNI and the name checked)
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_TLS_PORT tls=on timeout=1s;
    apipolicy_redis_ssl_trusted_certificate $TEST_NGINX_CERTS/ca.crt;
    apipolicy_redis_ssl_name localhost;
    apipolicy_redis_ssl_protocols TLSv1.2 TLSv1.3;
--- request
GET /api?k=named
--- response_body_filters eval
sub { return $_[0] . "count: " . RedisTest::rl_count(\@main::TLS_CLI, "api:default:named", 1) . "\n" }
--- response_body
ok
count: 1
--- no_error_log
[error]



=== TEST 2b: the TLS session is reused when the connection is made again (Redis closed it)
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_TLS_PORT tls=on timeout=1s;
    apipolicy_redis_ssl_trusted_certificate $TEST_NGINX_CERTS/ca.crt;
--- request
GET /api?k=resume
--- response_body_filters eval
sub {
    my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}";
    my $resumed = 0;
    for my $i (1 .. 5) {
        select(undef, undef, undef, 0.3);
        RedisTest::cli(\@main::TLS_CLI, "CLIENT KILL TYPE normal");
        `curl -s -o /dev/null '$url/api?k=resume-$i'`;
        select(undef, undef, undef, 0.4);
        ($resumed) = `curl -s $url/status` =~ /"tls_resumed":(\d+)/;
        last if $resumed;
    }
    return "resumed: " . ($resumed ? "yes" : "no") . "\n";
}
--- response_body
resumed: yes



=== TEST 3: another CA: requests go on, the failed verification logged once with its reason
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_TLS_PORT tls=on timeout=1s;
    apipolicy_redis_ssl_trusted_certificate $TEST_NGINX_CERTS/other-ca.crt;
--- request eval
["GET /api?k=other", "GET /api?k=other"]
--- error_code eval
[200, 200]
--- wait: 1
--- grep_error_log eval: qr/\[(?:error|crit|alert)\].*/
--- grep_error_log_out eval
qr/\A\[error\] \S+ apipolicy redis: 127\.0\.0\.1:\d+ TLS certificate not verified: (?:unable to get local issuer certificate|self-signed certificate in certificate chain); working without it until it answers again\n\z/



=== TEST 4: a name the certificate does not have: refused, logged once
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_TLS_PORT tls=on timeout=1s;
    apipolicy_redis_ssl_trusted_certificate $TEST_NGINX_CERTS/ca.crt;
    apipolicy_redis_ssl_name redis.example.com;
--- request
GET /api?k=name
--- wait: 0.8
--- grep_error_log eval: qr/\[(?:error|crit|alert)\].*/
--- grep_error_log_out eval
qr/\A\[error\] \S+ apipolicy redis: 127\.0\.0\.1:\d+ TLS certificate does not match: redis\.example\.com; working without it until it answers again\n\z/



=== TEST 5: apipolicy_redis_ssl_verify off: another CA is accepted
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_TLS_PORT tls=on timeout=1s;
    apipolicy_redis_ssl_verify off;
--- request
GET /api?k=noverify
--- response_body_filters eval
sub { return $_[0] . "count: " . RedisTest::rl_count(\@main::TLS_CLI, "api:default:noverify", 1) . "\n" }
--- response_body
ok
count: 1
--- no_error_log
[error]



=== TEST 6: a Redis that requires a client certificate, none given: the session is broken off, logged once (with nginx's SSL line of the first attempt)
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_MTLS_PORT tls=on timeout=1s;
    apipolicy_redis_ssl_trusted_certificate $TEST_NGINX_CERTS/ca.crt;
--- request
GET /api?k=nocert
--- error_code: 200
--- wait: 0.8
--- grep_error_log eval: qr/\[(?:error|crit|alert)\].*/
--- grep_error_log_out eval
qr/\A(?:\[crit\] [^\n]*SSL_(?:read|write)\(\) failed[^\n]*certificate required[^\n]*\n)?\[error\] \S+ apipolicy redis: 127\.0\.0\.1:\d+ (?:TLS handshake failed|broke off TLS before any reply)[^\n]*; working without it until it answers again\n\z/



=== TEST 7: mutual TLS: with the client certificate the counts reach it
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_MTLS_PORT tls=on timeout=1s;
    apipolicy_redis_ssl_trusted_certificate $TEST_NGINX_CERTS/ca.crt;
    apipolicy_redis_ssl_certificate $TEST_NGINX_CERTS/client.crt;
    apipolicy_redis_ssl_certificate_key $TEST_NGINX_CERTS/client.key;
--- request
GET /api?k=mtls
--- response_body_filters eval
sub { return $_[0] . "count: " . RedisTest::rl_count(\@main::MTLS_CLI, "api:default:mtls", 1) . "\n" }
--- response_body
ok
count: 1
--- no_error_log
[error]



=== TEST 8: config: tls=on without a CA to verify against
--- http_config
    apipolicy_redis 127.0.0.1:6379 tls=on;
--- must_die
--- error_log
has "tls=on": the server's certificate is verified against apipolicy_redis_ssl_trusted_certificate



=== TEST 9: config: a client certificate without its key
--- http_config
    apipolicy_redis 127.0.0.1:6379 tls=on;
    apipolicy_redis_ssl_verify off;
    apipolicy_redis_ssl_certificate $TEST_NGINX_CERTS/client.crt;
--- must_die
--- error_log
apipolicy_redis_ssl_certificate "
needs apipolicy_redis_ssl_certificate_key



=== TEST 10: config: a protocol nginx does not know
--- http_config
    apipolicy_redis 127.0.0.1:6379 tls=on;
    apipolicy_redis_ssl_verify off;
    apipolicy_redis_ssl_protocols TLSv2;
--- must_die
--- error_log
invalid value "TLSv2"
