# The Prometheus metrics as operators meet them: a gateway using every
# area is scraped for real; the scrape must pass "promtool check metrics"
# (the exposition format and the naming conventions), carry no file path
# in a label, and hold every metric and label that contrib/prometheus/
# alerts.yml and contrib/grafana/apipolicy.json use; the rules must pass
# "promtool check rules" and their unit tests ("promtool test rules").
# Then the Redis state is the gateway's, not one worker's: with two
# workers every scrape says the same.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use JWTTest;
use File::Temp qw(tempfile);
use JSON::PP ();
use MIME::Base64 qw(encode_base64url);
use Digest::SHA qw(hmac_sha256_hex);

$ENV{TEST_NGINX_REDIS_PORT} ||= 6379;
$ENV{TEST_NGINX_REDIS_DB} ||= 12;
$ENV{TEST_NGINX_JWT_SECRET} ||= $JWTTest::SECRET;
$ENV{TEST_NGINX_JWK_K} = encode_base64url($ENV{TEST_NGINX_JWT_SECRET});

our $TOKEN = JWTTest::jwt(alg => 'HS256',
                          claims => { sub => 'alice', exp => time + 3600 });
our $HOOK = '{"id":"evt_1"}';
our $HOOK_SIG = "sha256=" . hmac_sha256_hex($HOOK, "hook-secret");
our $KEY = "metrics-" . time . "-" . $$;

my $PROMTOOL = $ENV{PROMTOOL} || 'promtool';

# the JSON access log recipe, as conf-examples/access-log-json.conf has it
{
    open my $fh, '<', 'conf-examples/access-log-json.conf' or die $!;
    my $conf = do { local $/; <$fh> };
    ($ENV{TEST_NGINX_JSON_LOG}) = $conf =~ /^\s*(log_format apipolicy_json escape=json.*?;)\s*$/ms
        or die "no log_format apipolicy_json in conf-examples/access-log-json.conf";
}

# every line of the access log is a JSON object with apipolicy's fields
sub json_log_lines {
    my $log = shift;
    my @o;
    for my $line (grep { /\S/ } split /\n/, $log) {
        my $o = eval { JSON::PP->new->decode($line) };
        push @o, $o // { invalid => $line };
    }
    return @o;
}

master_on();
workers(2);
no_shuffle();

# --- what the contrib files use --------------------------------------------

sub slurp { my $f = shift; open my $fh, '<', $f or die "$f: $!"; local $/; <$fh> }

# the PromQL expressions of the alert rules and of the dashboard's panels
sub expressions {
    my @e;
    my $rules = slurp('contrib/prometheus/alerts.yml');

    # "expr: ..." on one line, or a folded block (">-") of indented lines
    while ($rules =~ /^(\s*)expr:\s*(?:>-?|\|-?)?\s*(.*)\n((?:\1\s+.*\n)*)/mg) {
        push @e, "alerts.yml: " . join(' ', grep { length } $2, $3);
    }

    my $dash = JSON::PP->new->decode(slurp('contrib/grafana/apipolicy.json'));
    my @panels = @{ $dash->{panels} };
    push @panels, @{ $_->{panels} || [] } for @panels;

    for my $p (@panels) {
        push @e, "apipolicy.json \"$p->{title}\": $_->{expr}"
            for grep { $_->{expr} } @{ $p->{targets} || [] };
    }

    for my $v (@{ $dash->{templating}{list} }) {
        my $q = ref $v->{query} ? $v->{query}{query} : $v->{query};
        push @e, "apipolicy.json variable $v->{name}: $q"
            if $q && $q =~ /apipolicy_/;
    }

    return @e;
}

# metric name => { label => 1 } from a scrape
sub scrape_labels {
    my %m;
    for (split /\n/, shift) {
        next if /^#/ || !/\S/;
        my ($name, $labels) = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s/
            or next;
        $m{$name} ||= {};
        $m{$name}{$1} = 1 while ($labels // '') =~ /([a-zA-Z_]\w*)="/g;
    }
    return \%m;
}

sub check_scrape {
    my $body = shift;

    my ($fh, $file) = tempfile(UNLINK => 1);
    print $fh $body;
    close $fh;

    my $out = `$PROMTOOL check metrics < $file 2>&1`;
    is($?, 0, 'promtool check metrics accepts the scrape') or diag($out);

    unlike($body, qr/(?:nginx\.conf|\.conf:\d|servroot)/,
           'no label holds a file path');

    like($body, qr/^apipolicy_jwks_fetches_total\{uri="\/_jwks",result="ok"\} 1$/m,
         'JWKS fetches are labelled by URI');
    like($body, qr/^apipolicy_jwks_age_seconds\{uri="\/_jwks"\} \d+$/m,
         'JWKS age');
    like($body, qr/^apipolicy_zone_size_bytes\{zone="jwks:\/_jwks"\} \d+$/m,
         'the JWKS zone is shown by URI');
    like($body, qr/^apipolicy_ratelimit_requests_total\{zone="api",tier="pro",result="passed"\} 1$/m,
         'rate limit checks by zone and tier');
    like($body, qr/^apipolicy_ratelimit_requests_total\{zone="api",tier="default",result="rejected"\} 1$/m,
         '... and result');
    like($body, qr/^apipolicy_webhook_requests_total\{scheme="github",result="verified"\} 1$/m,
         'webhooks by scheme');

    my $have = scrape_labels($body);

    for my $e (expressions()) {
        my ($where, $expr) = $e =~ /^(.*?): (.*)$/s;
        my @names = $expr =~ /\b(apipolicy_[a-z_]+)\b/g;

        ok(scalar @names, "$where uses apipolicy metrics");

        my %labels;
        for my $n (@names) {
            ok(exists $have->{$n}, "$where: $n is in the scrape");
            $labels{$_} = 1 for keys %{ $have->{$n} || {} };
        }

        # labels in selectors, by (...), on (...), and label_values()
        my @used;
        while ($expr =~ /\{([^}]*)\}/g) {
            push @used, $1 =~ /\b([a-z_]+)\s*(?:=~|!~|!=|=)/g;
        }
        while ($expr =~ /\b(?:by|on|without|ignoring)\s*\(([^)]*)\)/g) {
            push @used, map { s/\s//gr } split /,/, $1;
        }
        push @used, $1 while $expr =~ /label_values\([^,]+,\s*(\w+)\)/g;

        for my $l (@used) {
            next if $l eq 'instance' || $l eq 'job';   # set by Prometheus
            ok($labels{$l}, "$where: the label \"$l\" is on its metrics");
        }
    }

    chdir 'contrib/prometheus' or die $!;
    $out = `$PROMTOOL check rules alerts.yml 2>&1`;
    is($?, 0, 'promtool check rules contrib/prometheus/alerts.yml') or diag($out);
    $out = `$PROMTOOL test rules alerts.test.yml 2>&1`;
    is($?, 0, 'promtool test rules contrib/prometheus/alerts.test.yml')
        or diag($out);
    chdir '../..' or die $!;
}

add_response_body_check(sub {
    my ($block, $body, $req_idx, $repeated_req_idx, $dry_run) = @_;

    if (!$dry_run && $block->name =~ /JSON access log/ && $req_idx == 2) {
        select(undef, undef, undef, 0.2);    # the LOG phase of the last one
        my $log = do {
            local $/;
            open my $fh, '<', server_root() . '/logs/json.log' or die $!;
            <$fh>;
        };
        my @o = json_log_lines($log);
        is(scalar @o, 3, 'one JSON object per request');
        is_deeply([ map { $_->{invalid} // 'ok' } @o ], [ 'ok', 'ok', 'ok' ],
                  'every line is valid JSON');
        is($o[0]{sub}, 'alice', 'the verified subject');
        is($o[0]{ratelimit}, 'PASSED', 'the rate limit decision');
        is($o[0]{version}, 'deprecated', 'the version state');
        is($o[0]{status}, 200, 'status is a number');
        is($o[1]{reject_reason}, 'TOKEN_MALFORMED', 'a refusal\'s code');
        is($o[1]{sub}, '', 'no subject without a valid token');
        is($o[2]{reject_reason}, 'RATE_LIMITED', 'the rate limit refusal');
        unlike($log, qr/\Q$main::TOKEN\E/, 'the token is never logged');
    }

    return if $dry_run || !defined $body || $block->name !~ /real scrape/;

    my $requests = $block->request;
    return if ref $requests ne 'ARRAY' || $req_idx != $#$requests;

    check_scrape($body);
});

run_tests();

__DATA__

=== TEST 1: a real scrape of a gateway that uses every area
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT db=$TEST_NGINX_REDIS_DB;
    apipolicy_ratelimit_zone api:1m sync=off;
    apipolicy_ratelimit_tier default rate=1r/d;
    apipolicy_ratelimit_tier pro rate=100r/m;
    apipolicy_jwt_cache tokens:1m;
    apipolicy_idempotency_zone idem:1m redis=on;
    apipolicy_webhook_zone hooks:1m;
    map $jwt_claim_sub $tier { alice pro; default ""; }
--- config
    location = /_jwks {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/idp/jwks.json;
    }
    location = /idp/jwks.json {
        default_type application/json;
        return 200 '{"keys":[{"kty":"oct","alg":"HS256","k":"$TEST_NGINX_JWK_K"}]}';
    }
    location /api {
        apipolicy_cors_origins https://app.example.com;
        apipolicy_version deprecated=@1700000000;
        apipolicy_jwt optional;
        apipolicy_jwt_key_request /_jwks;
        apipolicy_ratelimit zone=api key=$remote_addr$jwt_claim_sub tier=$tier;
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /hook {
        apipolicy_webhook github secret=hook-secret replay_zone=hooks;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
    location = /metrics { apipolicy_status prometheus; }
--- request eval
["POST /api\n{}", "GET /api", "GET /api", "POST /hook\n$main::HOOK",
 "GET /metrics"]
--- more_headers eval
["Authorization: Bearer $main::TOKEN\r\nIdempotency-Key: $main::KEY\r\nOrigin: https://app.example.com\r\n",
 "", "", "X-Hub-Signature-256: $main::HOOK_SIG\r\n", ""]
--- error_code eval
[200, 200, 429, 200, 200]
--- response_headers eval
["", "", "", "", "Content-Type: text/plain; version=0.0.4; charset=utf-8"]



=== TEST 2: Redis down: every worker says 0 (one worker saw it, the other never used Redis)
--- http_config
    apipolicy_redis 127.0.0.1:1 connect_timeout=200ms;
    apipolicy_idempotency_zone idem:1m redis=on;
--- config
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
    location = /metrics { apipolicy_status prometheus; }
    location = /status { apipolicy_status; }
--- request eval
["POST /pay\n{}", "GET /metrics", "GET /metrics", "GET /metrics",
 "GET /metrics", "GET /metrics", "GET /metrics", "GET /status"]
--- more_headers eval
["Idempotency-Key: down\r\n", "", "", "", "", "", "", ""]
--- response_body_like eval
["ok",
 ('apipolicy_redis_up\{address="127.0.0.1:1"\} 0\n'
  . '(?s:.*)apipolicy_redis_workers\{state="unused"\} 1\n'
  . 'apipolicy_redis_workers\{state="up"\} 0\n'
  . 'apipolicy_redis_workers\{state="down"\} 1\n') x 6,
 '"redis":\{"address":"127.0.0.1:1","up":false,"workers":\{"up":0,"down":1,"unused":1\},'
 . '"errors":\{"connection":[1-9]']



=== TEST 3: the JSON access log recipe of conf-examples/access-log-json.conf: valid JSON with apipolicy's decisions
--- http_config
    $TEST_NGINX_JSON_LOG
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=1r/d;
--- config
    location /api {
        access_log logs/json.log apipolicy_json;
        apipolicy_jwt optional;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_version deprecated=@1700000000;
        apipolicy_ratelimit zone=api key=$binary_remote_addr;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 200 "ok\n"; }
--- request eval
["GET /api", "GET /api", "GET /api"]
--- more_headers eval
["Authorization: Bearer $main::TOKEN\r\n", "Authorization: Bearer x.y.z\r\n", ""]
--- error_code eval
[200, 401, 429]
