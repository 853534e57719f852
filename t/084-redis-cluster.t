# Redis Cluster (cluster=): three masters made by this suite with
# redis-server --cluster-enabled yes and redis-cli --cluster create on
# free loopback ports, and two gateways (two nginx instances) sharing
# them.  Rate limits on 50 keys spread over the three masters hold one
# quota across both gateways; idempotency records kept by one gateway
# are replayed by the other; a slot is migrated during the run
# (SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE), so the gateways
# meet -ASK, -TRYAGAIN and -MOVED, shown in apipolicy_status, with the
# right results; db= with cluster= is refused by nginx -t.
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use File::Temp qw(tempdir);
use Time::HiRes qw(time sleep);
use Digest::SHA qw(sha256_hex);
use RedisTest qw(start_redis cli free_port);
use Gateway;

my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my $module = $ENV{TEST_NGINX_LOAD_MODULES};   # empty: built in

plan skip_all => 'no module (run through make test)'
    unless defined $module && ($module eq '' || -f $module);
plan skip_all => 'no redis-server' unless `which redis-server` ne '';

my $load = $module ? "load_module $module;" : '';
my $dir = tempdir(CLEANUP => 1);
chmod 0755, $dir;


# ---- the cluster: three masters, no replicas ----------------------------

my @P = map {
    start_redis("cluster$_", conf => ['cluster-enabled yes',
                                      "cluster-config-file nodes-$_.conf",
                                      'cluster-node-timeout 15000'])
} 1 .. 3;

my $created = `redis-cli --cluster create @{[ map { "127.0.0.1:$_" } @P ]} --cluster-yes 2>&1`;
like($created, qr/All 16384 slots covered/, 'redis-cli --cluster create: three masters, 16384 slots');

for (1 .. 100) {
    last if 3 == grep { cli(['-p', $_], 'CLUSTER INFO') =~ /cluster_state:ok/ } @P;
    sleep 0.1;
}

my %id = map { $_ => cli(['-p', $_], 'CLUSTER MYID') } @P;

# the slot of a key, as Redis Cluster computes it (CRC16/XMODEM, hash tags)
my @crc = map {
    my $c = $_ << 8;
    $c = ($c & 0x8000) ? (($c << 1) ^ 0x1021) & 0xffff : ($c << 1) & 0xffff for 1 .. 8;
    $c
} 0 .. 255;

sub crc16 {
    my $crc = 0;
    $crc = (($crc << 8) & 0xffff) ^ $crc[(($crc >> 8) ^ $_) & 0xff] for unpack 'C*', shift;
    return $crc;
}

sub slot {
    my $k = shift;
    $k = $1 if $k =~ /\{([^}]+)\}/;
    return crc16($k) % 16384;
}

# the port of the master of each slot, as the cluster says now
sub owners {
    my @o;
    for my $line (split /\n/, cli(['-p', $P[0]], 'CLUSTER NODES')) {
        my @f = split ' ', $line;
        next unless $f[2] =~ /master/;
        my ($port) = $f[1] =~ /:(\d+)@/;
        for my $r (@f[8 .. $#f]) {
            next if $r =~ /^\[/;
            my ($a, $b) = split /-/, $r;
            @o[$a .. ($b // $a)] = ($port) x (($b // $a) - $a + 1);
        }
    }
    return \@o;
}

sub owner { return owners()->[shift] // 0 }

# the first of 1, 2, 3 ... for which the test holds
sub first_n { my $test = shift; for my $n (1 .. 1000000) { return $n if $test->($n) } die 'none' }

is(cli(['-p', $P[0]], 'CLUSTER KEYSLOT "apipolicy:rl:{api:default:k1}:7"'), slot('apipolicy:rl:{api:default:k1}:7'),
   'the suite computes slots as Redis does');


# ---- the gateways ---------------------------------------------------------

sub gateway {
    my (%o) = @_;
    my $seeds = join ',', map { "127.0.0.1:$_" } @{ $o{seeds} };
    return Gateway::start(http => sub {
        my ($port, $prefix) = @_;
        return <<"EOF";
    apipolicy_redis cluster=$seeds timeout=500ms connect_timeout=300ms;
    apipolicy_ratelimit_zone api:4m sync=200ms;
    apipolicy_ratelimit_tier default rate=6r/m;
    apipolicy_idempotency_zone idem:1m redis=on redis_fail=closed;
    server {
        listen 127.0.0.1:$port;
        keepalive_requests 100000;
        location /api { apipolicy_ratelimit zone=api key=\$arg_k; alias $prefix/ok.txt; }
        location /pay {
            apipolicy_idempotency zone=idem;
            proxy_pass http://127.0.0.1:$port/backend;
        }
        location /backend { return 200 "$port \$request_id\\n"; }
        location /status { apipolicy_status; }
    }
EOF
    });
}

sub stop { Gateway::stop(@_) }

# one request for each key, pipelined on one connection: { key => 1|0 }
sub hit {
    my ($g, $keys) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $g->{port}) or die "$!";
    print $s join '', map { "GET /api?k=$_ HTTP/1.1\r\nHost: g\r\n\r\n" } @$keys;
    my (%ok, $buf);
    $buf = '';
    for my $k (@$keys) {
        for (;;) {
            my $h = index($buf, "\r\n\r\n");
            if ($h >= 0) {
                my $head = substr($buf, 0, $h);
                my ($len) = $head =~ /Content-Length:\s*(\d+)/i;
                if (length($buf) >= $h + 4 + ($len // 0)) {
                    substr($buf, 0, $h + 4 + ($len // 0), '');
                    my ($code) = $head =~ /^HTTP\/1\.1 (\d+)/;
                    die "status $code" unless $code == 200 || $code == 429;
                    $ok{$k} = $code == 200 ? 1 : 0;
                    last;
                }
            }
            sysread($s, my $chunk, 65536) or die "gateway closed the connection";
            $buf .= $chunk;
        }
    }
    return \%ok;
}

# a POST with an Idempotency-Key: "status body"
sub pay {
    my ($g, $key) = @_;
    my $out = `curl -s -m 5 -X POST -H 'Idempotency-Key: $key' -H 'Content-Type: application/json' -d '{"n":1}' -w ' %{http_code}' http://127.0.0.1:$g->{port}/pay`;
    my ($body, $code) = $out =~ /^(.*?)\s*(\d+)$/s;
    return ($code // 0, $body // '');
}

# the Redis layer's nodes as the gateway's worker sees them
sub nodes {
    my $g = shift;
    my $j = `curl -s http://127.0.0.1:$g->{port}/status`;
    my %n;
    while ($j =~ /\{"address":"127\.0\.0\.1:(\d+)","role":"(\w+)","state":"(\w+)"[^}]*"commands":(\d+)[^}]*"moved":(\d+),"ask":(\d+)\}/g) {
        $n{$1} = { role => $2, state => $3, commands => $4, moved => $5, ask => $6 };
    }
    return \%n;
}

# the sum of the gateways' counts of a rate limit key in its current
# window, polled until it is "want" (or 5 s)
sub rl_total {
    my ($name, $want, $tries) = @_;
    my $t = -1;
    for (1 .. $tries // 50) {
        my $min = int(time / 60);
        my $out = cli(['-c', '-p', $P[0]], "HGETALL apipolicy:rl:{api:default:$name}:$min");
        $t = 0;
        # a master just restarted says CLUSTERDOWN until it has rejoined
        if ($out =~ /^[A-Z]+ /) { sleep 0.1; next }
        my %h = split /\n/, $out;
        $t += $h{$_} for grep { !/^(d:|r:|t0$)/ } keys %h;
        last if $t == $want;
        sleep 0.1;
    }
    return $t;
}

# a whole block within one minute's window (r/m tier)
sub same_minute { my $need = shift; my $left = 60 - time % 60; sleep($left + 0.2) if $left < $need }

my $t0 = time;
my @g = (gateway(seeds => [$P[0], $P[1]]), gateway(seeds => [$P[2]]));
sleep 1;                                        # maps learnt, both in G


# ---- 50 keys over three masters, one quota across two gateways -----------

{
    my @keys = map { "k$_" } 1 .. 50;
    my (%per, $o);
    $o = owners();
    $per{ $o->[slot("api:default:$_")] }++ for @keys;
    is(scalar(grep { ($per{$_} // 0) >= 5 } @P), 3, "the 50 keys spread over the three masters ("
       . join(' ', map { $per{$_} // 0 } @P) . ")");

    same_minute(12);
    my (%admitted, $asked);
    for my $round (1 .. 4) {
        for my $gw (@g) {
            my $r = hit($gw, \@keys);
            $admitted{$_} += $r->{$_} for @keys;
            diag("round $round gw $gw->{port}: " . join('', map { $r->{$_} } @keys)) if $ENV{DEBUG_084};
            $asked += @keys;
        }
        sleep 0.6;                              # a sync or two
    }
    my $total = 0;
    $total += $_ for values %admitted;
    my @over = grep { $admitted{$_} > 6 } @keys;
    is(scalar @over, 0, "no key admitted more than its quota of 6 across both gateways (@over)");
    cmp_ok($total, '<=', 300, "both gateways together: at most 50 x 6 admitted ($total of $asked)");
    # each gateway's cap rounds down (README, "The bound"): short of the
    # quota by at most one request per gateway and window
    my @short = grep { $admitted{$_} < 4 } @keys;
    is(scalar @short, 0, "every key admitted at least its quota less one per gateway (@short)");
    cmp_ok($total, '>=', 200, "... $total admitted in all");

    my @wrong = grep { rl_total($_, $admitted{$_}) != $admitted{$_} } @keys;
    is(scalar @wrong, 0, "every key's count in the cluster is what both gateways admitted (@wrong)");

    my %where = map { $_ => scalar(grep { /rl:\{api:default:k\d+\}/ } split /\n/, cli(['-p', $_], "KEYS '*'")) } @P;
    is(scalar(grep { $where{$_} >= 5 } @P), 3, "the counts are on all three masters ("
       . join(' ', map { $where{$_} } @P) . ")");

    for my $gw (@g) {
        my $n = nodes($gw);
        my $up = grep { $n->{$_} && $n->{$_}{role} eq 'master' && $n->{$_}{state} eq 'up' && $n->{$_}{commands} > 0 } @P;
        is($up, 3, "gateway $gw->{port}: apipolicy_status shows the three masters up, each sent commands");
    }
}


# ---- idempotency records kept by one gateway, replayed by the other --------

{
    my ($same, $first, %on) = (0, 0);
    my $o = owners();
    for my $i (1 .. 20) {
        my ($c1, $b1) = pay($g[0], "pay-$i");
        my ($c2, $b2) = pay($g[1], "pay-$i");
        $first++ if $c1 == 200 && $b1 =~ /^$g[0]{port} /;
        $same++ if $c2 == 200 && $b2 eq $b1;
        $on{ $o->[slot('apipolicy:idem:' . sha256_hex("\npay-$i"))] }++;
    }
    is($first, 20, "20 keys: the first gateway's backend answered each");
    is($same, 20, "... and the second gateway replayed each of them");
    is(scalar(grep { $on{$_} } @P), 3, "the records are on all three masters");
}


# ---- a slot migrated during the run: -ASK, -TRYAGAIN, -MOVED --------------

{
    # a new idempotency key, and a rate limit key in the same slot
    my $rkey = 'apipolicy:idem:' . sha256_hex("\nask-1");
    my $slot = slot($rkey);
    my $name = 'mv' . first_n(sub { slot("api:default:mv$_[0]") == $slot });
    my $from = owner($slot);
    my ($to) = grep { $_ != $from } @P;

    same_minute(12);
    my $r = hit($g[0], [$name, $name]);
    is(rl_total($name, 2), 2, "slot $slot on $from: 2 counted there before the move");

    cli(['-p', $to], "CLUSTER SETSLOT $slot IMPORTING $id{$from}");
    cli(['-p', $from], "CLUSTER SETSLOT $slot MIGRATING $id{$to}");

    # -ASK: a key the old master does not hold is written on the new one
    my ($c1, $b1) = pay($g[0], 'ask-1');
    my ($c2, $b2) = pay($g[1], 'ask-1');
    is("$c1 $c2", '200 200', 'slot migrating: the new key claimed and kept through -ASK');
    is($b2, $b1, '... and replayed by the other gateway through -ASK');
    is(cli(['-p', $to], "CLUSTER COUNTKEYSINSLOT $slot") . ' ' . cli(['-p', $to], "CLUSTER GETKEYSINSLOT $slot 10"), "1 $rkey", '... the record is on the importing master');

    # a count pushed now meets -TRYAGAIN (its previous window's key is
    # missing): retried until the slot has moved
    hit($g[0], [$name]);
    sleep 0.1;
    my @k = split /\n/, cli(['-p', $from], "CLUSTER GETKEYSINSLOT $slot 100");
    my $migrated = @k ? cli(['-p', $from], "MIGRATE 127.0.0.1 $to \"\" 0 5000 KEYS @k") : 'none';
    cli(['-p', $_], "CLUSTER SETSLOT $slot NODE $id{$to}") for $to, $from, grep { $_ != $to && $_ != $from } @P;
    is($migrated, 'OK', 'MIGRATE moved the keys of the slot');

    # -MOVED: the other gateway still sends to the old master
    hit($g[1], [$name]);
    is(rl_total($name, 4), 4, "after the move: both gateways' counts on the new master (4)");
    # a record neither gateway holds, in the moved slot: -MOVED for
    # whichever still has the old map, kept and replayed through the new
    my $pay = first_n(sub { slot('apipolicy:idem:' . sha256_hex("\nmoved-$_[0]")) == $slot });
    my ($c3, $b3) = pay($g[0], "moved-$pay");
    my ($c4, $b4) = pay($g[1], "moved-$pay");
    is("$c3 $c4", '200 200', 'after the move: a new record in the slot kept');
    is($b4, $b3, '... and replayed by the other gateway');
    like(cli(['-p', $to], "CLUSTER GETKEYSINSLOT $slot 10"), qr/^\Qapipolicy:idem:\E${\ sha256_hex("\nmoved-$pay")}$/m, '... from the new master');

    my ($moved, $ask) = (0, 0);
    for my $gw (@g) {
        my $n = nodes($gw);
        $moved += $n->{$from}{moved} // 0;
        $ask += $n->{$from}{ask} // 0;
    }
    cmp_ok($ask, '>=', 2, "apipolicy_status: the old master answered -ASK ($ask)");
    cmp_ok($moved, '>=', 1, "apipolicy_status: the old master answered -MOVED ($moved)");
    diag("slot $slot moved from $from to $to: ASK $ask, MOVED $moved");
}


# ---- the logs: the map said once, nothing worse than a warning ------------

for my $gw (@g) {
    my $log = `cat $gw->{prefix}/logs/error.log`;
    like($log, qr/apipolicy redis: cluster map from 127\.0\.0\.1:\d+: 3 masters serve 16384 of 16384 slots/,
         "gateway $gw->{port}: the map logged at notice");
    unlike($log, qr/\[(error|crit|alert|emerg)\]/, "gateway $gw->{port}: no error line");
}



# ---- a master down: its keys as with Redis down, the others as before ----

{
    my $x = $P[2];
    my $idem = sub { 'apipolicy:idem:' . sha256_hex("\n" . shift) };
    my $o = owners();
    my $on = first_n(sub { $o->[slot($idem->("down-$_[0]"))] == $x });
    my $off = first_n(sub { $o->[slot($idem->("up-$_[0]"))] != $x });
    my $rl = first_n(sub { $o->[slot("api:default:dx$_[0]")] == $x });

    same_minute(15);
    RedisTest::stop_redis('cluster3', 'KILL');
    my $t = time;
    my ($c1) = pay($g[0], "down-$on");
    my $took = time - $t;
    my ($c2, $b2) = pay($g[0], "up-$off");
    my ($c3, $b3) = pay($g[1], "up-$off");
    $t = time;
    my $r = hit($g[0], ["dx$rl", "dx$rl"]);
    my $hit = time - $t;

    is($c1, 503, "master $x killed: a record in its slots answered 503 as redis_fail=closed says");
    cmp_ok($took, '<', 1.5, "... at once, within timeout= ($took s)");
    is("$c2 $c3 " . ($b3 eq $b2 ? 'replayed' : "not replayed: $b2 / $b3"), '200 200 replayed',
       '... a record on another master kept and replayed as before');
    is($r->{"dx$rl"}, 1, "... a rate limit of its slots decided locally at once ($hit s)");

    start_redis('cluster3', port => $x, conf => ['cluster-enabled yes',
                                                'cluster-config-file nodes-3.conf',
                                                'cluster-node-timeout 15000']);
    is(rl_total("dx$rl", 2, 120), 2, 'master back: the counts made meanwhile pushed to it');

    for my $gw (@g) {
        my $log = `cat $gw->{prefix}/logs/error.log`;
        my @down = $log =~ /\[error\] [^\n]*apipolicy redis: 127\.0\.0\.1:$x [^\n]*working without it/g;
        is(scalar @down, 1, "gateway $gw->{port}: the master's loss logged once");
    }
    my @back = `cat $g[0]{prefix}/logs/error.log` =~ /apipolicy redis: 127\.0\.0\.1:$x is reachable again/g;
    is(scalar @back, 1, 'its return logged once');
}

stop(@g);


# ---- no node gives a map: Redis down, said once --------------------------

{
    my @dead = (free_port(), free_port());
    my $gw = gateway(seeds => \@dead);
    my $t = time;
    my ($c) = pay($gw, 'nomap-1');
    my $r = hit($gw, ['nomap', 'nomap']);
    my $took = time - $t;
    sleep 1.5;
    pay($gw, 'nomap-2');
    hit($gw, ['nomap']);

    is($c, 503, 'no node answers: idempotency answers 503 as redis_fail=closed says');
    is($r->{nomap}, 1, '... rate limits count locally');
    cmp_ok($took, '<', 1.5, "... at once ($took s)");
    my $log = `cat $gw->{prefix}/logs/error.log`;
    my @lost = $log =~ /no node of "cluster=[^"]+" answers CLUSTER SLOTS; working without Redis until one does/g;
    is(scalar @lost, 1, '... said once in the log, however many attempts');
    stop($gw);
}


# ---- nginx -t: db= with cluster= ------------------------------------------

{
    my $prefix = "$dir/conf-db";
    mkdir $prefix; mkdir "$prefix/conf"; mkdir "$prefix/logs";
    open my $f, '>', "$prefix/conf/nginx.conf" or die;
    print $f "$load\nevents {}\nhttp {\n    apipolicy_redis cluster=127.0.0.1:$P[0] db=3;\n}\n";
    close $f;
    my $out = `$nginx -t -p $prefix/ -c conf/nginx.conf 2>&1`;
    like($out, qr/\[emerg\] .*"db=3" cannot be used with "cluster=": Redis Cluster has database 0 only; remove db= .* in \S+nginx\.conf:4/,
         'nginx -t: db= with cluster= refused, naming the file and line');
}

diag(sprintf "suite time %.1f s", time - $t0);
done_testing();
