# Redis with ACL users (Redis 6+): a redis-server of the suite's own with
# the default user disabled and one user "gw".  username= and password=
# authenticate as that user; a wrong password (or no user name) is
# refused: logged once with Redis's reason, then the gateway goes on as
# when Redis is down, and the attempts after it are not logged as errors.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use RedisTest qw(start_redis cli free_port rl_count);

our $PORT = start_redis('acl', conf => [
    'user default off',
    'user gw on >s3cret-pass ~* &* +@all',
]);
$ENV{TEST_NGINX_ACL_PORT} = $PORT;
$ENV{TEST_NGINX_DEAD_PORT} = RedisTest::free_port();

our @GW = ('-p', $PORT, '--user', 'gw', '--pass', 's3cret-pass', '--no-auth-warning');

sub gw { return RedisTest::cli(\@GW, shift) }

our $want = 1;      # the count TEST 2 expects next

check_accum_error_log();
master_on();
workers(1);
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    if (defined $block->http_config && $block->http_config =~ /ratelimit_zone/) {
        $block->set_value("config", $block->config . <<'_EOC_');
    location /api {
        apipolicy_ratelimit zone=api key=$arg_k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: the default user is disabled: redis-cli without a user is refused (the server is what the suite means)
--- config
    location /backend { return 200 "ok\n"; }
--- http_config
--- request
GET /backend
--- response_body_filters eval
sub { my $o = RedisTest::cli(['-p', $main::PORT], "GET x"); return ($o =~ /NOAUTH|WRONGPASS|disabled/ ? "refused" : "answered: $o") . "\n" }
--- response_body
refused



=== TEST 2: username= and password=: the counts reach Redis as user gw
--- init
# the three requests in one minute's window (a r/m tier: a new window
# starts its count again)
my $left = 60 - time() % 60;
sleep($left + 1) if $left < 20;
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_ACL_PORT username=gw password=s3cret-pass timeout=500ms;
    apipolicy_ratelimit_zone api:1m sync=50ms;
    apipolicy_ratelimit_tier default rate=100r/m;
--- config
    location /backend { return 200 "ok\n"; }
--- request eval
["GET /api?k=acl", "GET /api?k=acl", "GET /api?k=acl"]
--- error_code eval
[200, 200, 200]
--- response_body_filters eval
sub { return $_[0] . "count in Redis: " . RedisTest::rl_count(\@main::GW, "api:default:acl", $main::want++) . "\n" }
--- response_body eval
["ok\ncount in Redis: 1\n", "ok\ncount in Redis: 2\n", "ok\ncount in Redis: 3\n"]
--- no_error_log
[error]



=== TEST 3: a wrong password: requests go on, the refusal is logged once with Redis's reason, the retries are not errors
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_ACL_PORT username=gw password=wrong timeout=500ms;
    apipolicy_ratelimit_zone api:1m sync=50ms;
    apipolicy_ratelimit_tier default rate=100r/m;
--- config
    location /backend { return 200 "ok\n"; }
--- request eval
["GET /api?k=bad", "GET /api?k=bad", "GET /api?k=bad"]
--- error_code eval
[200, 200, 200]
--- wait: 1.2
--- grep_error_log eval: qr/\[error\].*apipolicy redis:.*/
--- grep_error_log_out eval
qr/\A\[error\] \S+ apipolicy redis: 127\.0\.0\.1:\d+ refused AUTH \(check username= and password=\): WRONGPASS invalid username-password pair or user is disabled\.; working without it until it answers again\n\z/
--- no_error_log
wrong



=== TEST 4: password= alone (the default user, disabled here): refused AUTH, logged once
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_ACL_PORT password=s3cret-pass timeout=500ms;
    apipolicy_ratelimit_zone api:1m sync=50ms;
    apipolicy_ratelimit_tier default rate=100r/m;
--- config
    location /backend { return 200 "ok\n"; }
--- request
GET /api?k=default
--- error_code: 200
--- wait: 0.8
--- grep_error_log eval: qr/\[error\].*apipolicy redis:.*/
--- grep_error_log_out eval
qr/\A\[error\] .*refused AUTH \(check username= and password=\): WRONGPASS[^\n]*\n\z/



=== TEST 5: config: username= without password=
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_ACL_PORT username=gw;
--- config
    location /backend { return 200 "ok\n"; }
--- must_die
--- error_log
"username=" needs "password=" (Redis ACL users authenticate with both)



=== TEST 6: nobody listens: one error line naming the address, the attempts after it (backing off) at info, no recv() or connect() errors
--- http_config
    apipolicy_redis 127.0.0.1:$TEST_NGINX_DEAD_PORT timeout=300ms;
    apipolicy_ratelimit_zone api:1m sync=50ms;
    apipolicy_ratelimit_tier default rate=100r/m;
--- config
    location /backend { return 200 "ok\n"; }
--- request eval
["GET /api?k=dead", "GET /api?k=dead"]
--- error_code eval
[200, 200]
--- wait: 1.5
--- grep_error_log eval: qr/\[(?:error|crit|alert)\].*/
--- grep_error_log_out eval
qr/\A\[error\] \S+ apipolicy redis: 127\.0\.0\.1:\d+ refused the connection or cannot be reached; working without it until it answers again\n\z/
