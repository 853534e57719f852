# Kept responses across "nginx -s reload": a zone whose name and size do
# not change keeps them (ttl= and max_body= may change); a resized one
# starts afresh.  nginx keeps running between the blocks
# (TEST_NGINX_USE_HUP).
BEGIN { $ENV{TEST_NGINX_USE_HUP} = 1 }

use Test::Nginx::Socket 'no_plan';

master_on();
workers(2);
no_shuffle();

add_block_preprocessor(sub {
    my $block = shift;

    if (!defined $block->config) {
        $block->set_value("config", <<'_EOC_');
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend { return 201 "attempt $http_x_attempt\n"; }
_EOC_
    }
});

run_tests();

__DATA__

=== TEST 1: a response is kept
--- http_config
    apipolicy_idempotency_zone idem:1m;
--- request
POST /pay
{}
--- more_headers
Idempotency-Key: hup
X-Attempt: 1
--- error_code: 201
--- response_body
attempt 1



=== TEST 2: after a reload with the same zone (another ttl) it is replayed
--- http_config
    apipolicy_idempotency_zone idem:1m ttl=1h;
--- request
POST /pay
{}
--- more_headers
Idempotency-Key: hup
X-Attempt: 2
--- error_code: 201
--- response_headers
Idempotent-Replayed: true
--- response_body
attempt 1
--- no_error_log
[emerg]



=== TEST 3: after a reload that resizes the zone the key is new
--- http_config
    apipolicy_idempotency_zone idem:2m;
--- request
POST /pay
{}
--- more_headers
Idempotency-Key: hup
X-Attempt: 3
--- error_code: 201
--- response_headers
Idempotent-Replayed:
--- response_body
attempt 3
