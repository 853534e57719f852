# A retried request never reaches the upstream twice: against a real slow
# backend (t/lib/SlowBackend.pm, a Perl server on a free port that counts
# the calls of each Idempotency-Key), the client that goes away, the
# upstream that times out or breaks off, a full zone with one slow request
# at its tail, a zone full of keys in flight, answers of many sizes in a
# full zone.
#
# Each scenario runs in --- init (after nginx started) with its own
# assertions; the block's request then checks that nginx still answers.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use SlowBackend;
use Time::HiRes qw(sleep time);

$ENV{TEST_NGINX_BACKEND_PORT} = SlowBackend::start();

master_on();
workers(2);
no_shuffle();

# each block: /pay in front of the backend (zone "idem") unless it says
# otherwise, its scenario in --- init, then nginx still answers GET /ok
add_block_preprocessor(sub { SlowBackend::scenario_defaults(shift, 'idem') });

sub post { return SlowBackend::post(server_port(), @_) }

sub errlog { return SlowBackend::slurp($Test::Nginx::Util::ErrLogFile) }

# 1. the client goes away at 0.3 s of a 2 s call; the retry at 0.6 s
sub client_gone {
    my $t0 = time;
    my $a = SlowBackend::spawn(server_port(), path => '/pay?ms=2000',
                               headers => { 'Idempotency-Key' => 'gone-1' },
                               body => '{"amount":10}', close_after => 0.3);
    sleep 0.6;
    my $b = post('gone-1', '/pay?ms=2000');
    is($b->{status}, 409, "client gone: the retry in flight gets 409");
    like($b->{headers}{'retry-after'} // '', qr/^\d+$/, "client gone: with Retry-After");
    SlowBackend::collect($a);
    sleep 2.5 - (time - $t0) if time - $t0 < 2.5;
    my $c = post('gone-1', '/pay?ms=2000');
    is($c->{status}, 201, "client gone: the answer the client never read is kept");
    is($c->{headers}{'idempotent-replayed'}, 'true', "client gone: replayed");
    like($c->{body}, qr/^\{"call":1,/, "client gone: the first call's body");
    is(SlowBackend::calls('gone-1'), 1, "client gone: one backend call");
}

# 2. proxy_read_timeout 1s on a 2 s call: 504, the key locked for lease=
sub upstream_timeout {
    my ($key, $lease) = @_;
    my $a = post($key, '/pay?ms=2000');
    is($a->{status}, 504, "timeout: 504");
    my $b = post($key, '/pay?ms=2000');
    is($b->{status}, 409, "timeout: the immediate retry gets 409");
    like($b->{body}, qr/"the outcome of the first request with this key is unknown; the key is locked until its lease ends"/,
         "timeout: said so");
    like($b->{headers}{'retry-after'} // '', qr/^\d+$/, "timeout: Retry-After");
    ok(($b->{headers}{'retry-after'} // 0) > $lease - 3 && $b->{headers}{'retry-after'} <= $lease,
       "timeout: Retry-After is what is left of the lease");
    sleep 1.5;
    is(SlowBackend::calls($key), 1, "timeout: one backend call");
    like(errlog(), qr/\[warn\] .*apipolicy: the upstream timed out; its Idempotency-Key stays locked for lease=${lease}s of the idempotency zone "idem"/,
         "timeout: logged");
    $b = post($key, '/pay?ms=2000');
    is($b->{status}, 409, "timeout: a retry after the upstream finished still gets 409");
}

# ... and once the lease ended, the key is free
sub after_lease {
    my $key = shift;
    sleep 2;
    my $c = post($key, '/pay?ms=0');
    is($c->{status}, 201, "timeout: after the lease the key is free again");
    is(SlowBackend::calls($key), 2, "timeout: ... and that retry reaches the upstream");
}

# 3. the upstream sends half its body and closes
sub upstream_broke {
    my $a = post('cut-1', '/pay?cut=1&size=2000');
    ok(length($a->{body}) < 2000, "broke off: the client got part of the body");
    my $b = post('cut-1', '/pay?cut=1&size=2000');
    is($b->{status}, 409, "broke off: the retry gets 409");
    is(SlowBackend::calls('cut-1'), 1, "broke off: one backend call");
}

# 4. a 32k zone, a 3 s request at the back of the LRU, 150 new keys
sub full_zone_slow_tail {
    my $a = SlowBackend::spawn(server_port(), path => '/pay?ms=3000',
                               headers => { 'Idempotency-Key' => 'tail-0' },
                               body => '{"amount":10}');
    sleep 0.3;
    my (%st, $replayed, $calls);
    for my $i (1 .. 150) {
        my $r = post("tail-$i", '/pay');
        $st{$r->{status}}++;
        $r = post("tail-$i", '/pay');
        $replayed++ if ($r->{headers}{'idempotent-replayed'} // '') eq 'true';
        $calls += SlowBackend::calls("tail-$i");
    }
    is(join(',', map { "$_=$st{$_}" } sort keys %st), '201=150',
       "full zone, slow tail: 150 new keys all answered");
    is($replayed, 150, "full zone, slow tail: each kept and replayed");
    is($calls, 150, "full zone, slow tail: one backend call per key");
    is(SlowBackend::collect($a)->{status}, 201, "full zone, slow tail: the slow one answered");
    my $r = post('tail-0', '/pay?ms=3000');
    is($r->{headers}{'idempotent-replayed'}, 'true', "full zone, slow tail: the slow one replayed");
    is(SlowBackend::calls('tail-0'), 1, "full zone, slow tail: one backend call");
    unlike(errlog(), qr/\[alert\]|is full/, "full zone, slow tail: no zone-full line");
}

# 5. every entry locked (answers over max_body): 503 with Retry-After, logged once
sub full_of_locked {
    my (%st, $ra, @done, @refused);
    for my $i (1 .. 400) {
        my $r = post("lock-$i", '/pay?size=100');
        $st{$r->{status}}++;
        if ($r->{status} == 503) {
            push @refused, $i;
            $ra //= $r->{headers}{'retry-after'};
            like($r->{body}, qr/"code":"IDEMPOTENCY_UNAVAILABLE"/, "locked zone: problem code") if @refused == 1;
        } else {
            push @done, $i;
        }
    }
    ok(!$st{500}, "locked zone: never 500");
    ok(@done > 10 && @refused > 10, "locked zone: first answered, then refused (" . join(',', %st) . ")");
    is($ra, '1', "locked zone: 503 with Retry-After: 1");
    is((grep { SlowBackend::calls("lock-$_") != 1 } @done), 0, "locked zone: each answered key called once");
    is((grep { SlowBackend::calls("lock-$_") != 0 } @refused), 0, "locked zone: refused keys never called");
    my $n = () = errlog() =~ /apipolicy: the idempotency zone "idem" is full of keys in flight, none can be evicted/g;
    is($n, 1, "locked zone: logged once");
    my $r = post("lock-$done[0]", '/pay?size=100');
    is($r->{status}, 409, "locked zone: a locked key still gets 409");
}

# 6. answers of SIZES in a full zone: each retried at once is replayed
sub sizes {
    my ($tag, $n, @sizes) = @_;
    my ($bad, $calls, %first) = (0, 0);
    for my $i (1 .. $n) {
        my $size = $sizes[$i % @sizes];
        my $a = post("$tag-$i", "/pay?size=$size");
        my $b = post("$tag-$i", "/pay?size=$size");
        $bad++ if $a->{status} != 201 || length($a->{body}) != $size
                  || ($b->{headers}{'idempotent-replayed'} // '') ne 'true'
                  || $b->{body} ne $a->{body};
        $calls += SlowBackend::calls("$tag-$i");
        $first{$i} = $a->{body};
    }
    is($bad, 0, "$tag: every answer replayed byte for byte");
    is($calls, $n, "$tag: one backend call per key");

    # the answers still kept, newest first, are still the first ones: no
    # answer written over another's memory
    my ($kept, $wrong) = (0, 0);
    for my $i (reverse 1 .. $n) {
        my $c = post("$tag-$i", "/pay?size=" . $sizes[$i % @sizes]);
        last unless ($c->{headers}{'idempotent-replayed'} // '') eq 'true';
        $kept++;
        $wrong++ if $c->{body} ne $first{$i};
    }
    ok($kept > 0 && $wrong == 0, "$tag: the $kept answers still kept are the first ones");
    return $kept;
}

# 6b. the zone holds as many answers after a churn of many sizes as
# before it: no answer's memory lost when an evicted entry's slot goes to
# the next key (and is freed when that key's answer needs another size)
sub capacity {
    my $before = sizes("cap-before", 150, 150);
    sizes("cap-mixed", 200, 40, 700, 150, 300, 1500, 2500, 90);
    sizes("cap-large", 200, 150, 150, 150, 1500, 1200);
    my $after = sizes("cap-after", 150, 150);
    ok($after >= $before - 2, "capacity: $after answers kept after the churn, $before before it");
}

# 8. a body that comes after the headers (read without blocking, the
# phases resumed when it is in) and one that comes with them (read at once)
# give the same fingerprint: replays either way, 422 for another payload
sub late_body {
    my $a = post('late-1', '/pay', body_after => 0.3);
    is($a->{status}, 201, "late body: answered");
    my $b = post('late-1', '/pay');
    is($b->{headers}{'idempotent-replayed'} // '', 'true', "late body: its retry with the body at once is a replay");
    is($b->{body}, $a->{body}, "late body: the first call's body");
    my $c = post('late-1', '/pay', body_after => 0.3);
    is($c->{headers}{'idempotent-replayed'} // '', 'true', "late body: a retry with a late body is a replay");
    my $d = post('late-1', '/pay', body => '{"amount":11}', body_after => 0.3);
    is($d->{status}, 422, "late body: another payload, late: 422");
    my $e = post('late-2', '/pay');
    my $f = post('late-2', '/pay', body_after => 0.3);
    is($f->{headers}{'idempotent-replayed'} // '', 'true', "late body: a body at once, then its retry late: a replay");
    is(SlowBackend::calls('late-1') + SlowBackend::calls('late-2'), 2, "late body: one backend call per key");
}

# 7. keep=5xx: a 5xx the upstream sent is its answer, kept and replayed;
# without it the key is free again; an upstream never reached frees it
# either way
sub keep_5xx {
    my $a = post('k5-1', '/keep?status=503');
    is($a->{status}, 503, "keep=5xx: the upstream's 503");
    my $b = post('k5-1', '/keep?status=503');
    is($b->{status}, 503, "keep=5xx: the retry gets the 503");
    is($b->{headers}{'idempotent-replayed'}, 'true', "keep=5xx: replayed");
    is($b->{body}, $a->{body}, "keep=5xx: the first call's body");
    is(SlowBackend::calls('k5-1'), 1, "keep=5xx: one backend call");

    $a = post('k5-2', '/pay?status=500');
    $b = post('k5-2', '/pay?status=500');
    is($b->{status}, 500, "no keep=: the retry gets a 500 of its own");
    ok(!defined $b->{headers}{'idempotent-replayed'}, "no keep=: not replayed");
    is(SlowBackend::calls('k5-2'), 2, "no keep=: the retry reached the upstream");

    $a = post('k5-3', '/down');
    $b = post('k5-3', '/down');
    is($a->{status}, 502, "keep=5xx, upstream never reached: 502");
    is($b->{status}, 502, "keep=5xx, upstream never reached: the retry is tried again");
    ok(!defined $b->{headers}{'idempotent-replayed'}, "keep=5xx, upstream never reached: not replayed");
}

# 8. a 32k zone filled while an 8 s call runs: its answer, kept once the
# zone is full, is the most recently used, not the first to go
sub kept_is_recent {
    my $t0 = time;
    my $a = SlowBackend::spawn(server_port(), path => '/pay?ms=8000',
                               headers => { 'Idempotency-Key' => 'recent-0' },
                               body => '{"amount":10}');
    sleep 0.2;
    post("recent-$_", '/pay') for 1 .. 150;
    ok(time - $t0 < 7, "kept is recent: the zone filled while the call ran");
    is(SlowBackend::collect($a)->{status}, 201, "kept is recent: the slow call answered");
    post("recent-new-$_", '/pay') for 1 .. 5;
    my $r = post('recent-0', '/pay?ms=8000');
    is($r->{headers}{'idempotent-replayed'}, 'true', "kept is recent: replayed after 5 more new keys");
    is(SlowBackend::calls('recent-0'), 1, "kept is recent: one backend call");
}

run_tests();

__DATA__

=== TEST 1: the client goes away: the upstream's answer is still read and kept; the retry gets 409 in flight, then the replay
--- http_config
    apipolicy_idempotency_zone idem:1m;
--- init
main::client_gone();
--- timeout: 10



=== TEST 2: the upstream times out: 504, the key locked for lease= (default 5m), Retry-After, logged
--- http_config
    apipolicy_idempotency_zone idem:1m;
--- config eval
SlowBackend::pay_config('idem', 'proxy_read_timeout 1s;')
--- init
main::upstream_timeout('slow-1', 300);
--- timeout: 10



=== TEST 3: ... with lease=3s the key is free again after the lease, and the retry reaches the upstream
--- http_config
    apipolicy_idempotency_zone idem:1m lease=3s;
--- config eval
SlowBackend::pay_config('idem', 'proxy_read_timeout 1s;')
--- init
main::upstream_timeout('slow-2', 3);
main::after_lease('slow-2');
--- timeout: 10



=== TEST 4: the upstream breaks off after its headers: the key stays locked
--- http_config
    apipolicy_idempotency_zone idem:1m;
--- init
main::upstream_broke();



=== TEST 5: a full 32k zone with one slow request at its tail still takes 150 new keys
--- http_config
    apipolicy_idempotency_zone idem:32k;
--- init
main::full_zone_slow_tail();
--- timeout: 10



=== TEST 6: a zone where every entry is locked: 503 IDEMPOTENCY_UNAVAILABLE with Retry-After, one log line, never a second call
--- http_config
    apipolicy_idempotency_zone idem:32k max_body=16 lease=1h;
--- init
main::full_of_locked();



=== TEST 7: 3 KB answers among small ones in a full 32k zone (max_body=4k) are kept and replayed
--- http_config
    apipolicy_idempotency_zone idem:32k max_body=4k;
--- init
main::sizes("3k", 40, 100, 3000);



=== TEST 8: 40 KB answers in a full 256k zone, and answers of many sizes
--- http_config
    apipolicy_idempotency_zone idem:256k max_body=64k;
--- init
main::sizes("40k", 20, 40000);
main::sizes("mixed", 60, 100, 900, 2100, 3000, 5000, 9000, 17000, 40000, 60000, 300);



=== TEST 9: keep=5xx: the upstream's 503 is kept and replayed (one backend call); without it the retry reaches the upstream; a 502 for an upstream never reached is never kept
--- http_config
    apipolicy_idempotency_zone idem:1m;
--- config
    location /keep {
        apipolicy_idempotency zone=idem keep=5xx;
        proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT;
    }
    location /pay {
        apipolicy_idempotency zone=idem;
        proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT;
    }
    location /down {
        apipolicy_idempotency zone=idem keep=5xx;
        proxy_pass http://127.0.0.1:1;
    }
    location = /ok { return 200 "ok\n"; }
--- init
main::keep_5xx();



=== TEST 10: an answer kept in a full zone is the most recently used entry: the next new keys evict older ones
--- http_config
    apipolicy_idempotency_zone idem:32k;
--- init
main::kept_is_recent();
--- timeout: 15



=== TEST 11: answers alike in a full 32k zone (each new key evicts an entry whose answer's memory the new answer takes): 300 keys, each replayed byte for byte, then answers of other sizes
--- http_config
    apipolicy_idempotency_zone idem:32k;
--- init
main::sizes("alike", 300, 150);
main::sizes("close", 100, 100, 120, 90);
main::sizes("apart", 100, 40, 700, 150, 3000);
--- timeout: 30



=== TEST 12: a full 32k zone holds as many answers after a churn of answers of many sizes as before it (no memory lost with the slots that evicted entries hand on)
--- http_config
    apipolicy_idempotency_zone idem:32k;
--- init
main::capacity();
--- timeout: 30



=== TEST 13: a request body that comes after its headers: fingerprinted the same as one that comes with them
--- http_config
    apipolicy_idempotency_zone idem:1m;
--- init
main::late_body();
--- timeout: 15
