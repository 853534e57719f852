# Rate limits across gateways: 2 and 3 separate nginx instances (started
# by this suite on free loopback ports, the built module loaded) share one
# limit through a real redis-server.  Admitted totals stay within the
# bound the README states, a key that starts on every gateway at once
# stays within its quota, 2,000 keys reach Redis and count on the other
# gateway, and Redis killed and restarted mid-run gets every count again,
# said once each way in the log.
#
# apipolicy-test: alone (util/test.sh runs it after the other suites: the
# shares follow each gateway's demand, which a machine busy with other
# suites makes jump within a sync interval)
use strict;
use warnings;
use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use IO::Select;
use File::Temp qw(tempdir);
use Time::HiRes qw(time sleep);
use POSIX qw(floor);
use Gateway;

my $module = $ENV{TEST_NGINX_LOAD_MODULES};
my $rport = $ENV{TEST_NGINX_REDIS_PORT};

plan skip_all => 'no module (run through make test)' unless $module && -f $module;
plan skip_all => 'no redis-server' unless $rport && `which redis-server` ne '';

my $dir = tempdir(CLEANUP => 1);
chmod 0755, $dir;

sub free_port { return Gateway::free_port() }

sub redis {
    my ($port, $db, $cmd) = @_;
    my $out = `redis-cli -p $port -n $db $cmd 2>/dev/null`;
    chomp $out;
    return $out;
}

# a gateway: its own prefix, port and master (t/lib/Gateway.pm); returns
# { port, prefix }
sub gateway {
    my (%o) = @_;
    return Gateway::start(workers => $o{workers}, log_level => 'notice',
                          http => sub {
        my ($port, $prefix) = @_;
        return <<"EOF";
    apipolicy_redis 127.0.0.1:$o{redis} db=$o{db} timeout=300ms connect_timeout=300ms;
    apipolicy_ratelimit_zone $o{zone}:4m sync=$o{sync};
    apipolicy_ratelimit_tier default rate=$o{rate};
    server {
        listen 127.0.0.1:$port;
        keepalive_requests 100000;
        location /api { apipolicy_ratelimit zone=$o{zone} key=\$arg_k; alias $prefix/ok.txt; }
    }
EOF
    });
}

sub stop { Gateway::stop(@_) }

# sends "n" requests for each of "keys" to a gateway, pipelined "depth" at
# a time on one connection; returns [admitted, refused]
sub hit {
    my ($g, $keys, $n, $depth) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $g->{port}) or die "$!";
    my @reqs = map { my $k = $_; map { "GET /api?k=$k HTTP/1.1\r\nHost: g\r\n\r\n" } 1 .. $n } @$keys;
    my ($ok, $no, $buf) = (0, 0, '');
    while (@reqs) {
        my @batch = splice @reqs, 0, $depth;
        print $s join '', @batch;
        my $want = @batch;
        while ($want) {
            my $h = index($buf, "\r\n\r\n");
            if ($h >= 0) {
                my $head = substr($buf, 0, $h);
                my ($len) = $head =~ /Content-Length:\s*(\d+)/i;
                $len //= 0;
                if (length($buf) >= $h + 4 + $len) {
                    substr($buf, 0, $h + 4 + $len, '');
                    $head =~ /^HTTP\/1\.1 (\d+)/;
                    $1 == 200 ? $ok++ : $1 == 429 ? $no++ : die "status $1";
                    $want--;
                    next;
                }
            }
            my $r = sysread($s, my $chunk, 65536);
            die "gateway closed the connection" unless $r;
            $buf .= $chunk;
        }
    }
    return [$ok, $no];
}

# drives several gateways at once from one process: "per" requests a
# second on each, pipelined 5 at a time, for "seconds"; [admitted, refused]
sub drive {
    my ($gws, $key, $per, $seconds) = @_;
    my $start = time;
    my @kids;
    for my $g (@$gws) {
        pipe(my $r, my $w) or die;
        my $pid = fork // die;
        if (!$pid) {
            close $r;
            my ($ok, $no) = (0, 0);
            my $t0 = time;
            for my $tick (0 .. $per * $seconds / 5 - 1) {
                my $at = $t0 + $tick * 5 / $per;
                sleep($at - time) if $at > time;
                my $res = hit($g, [$key], 5, 5);
                $ok += $res->[0]; $no += $res->[1];
            }
            print $w "$ok $no\n";
            close $w;
            POSIX::_exit(0);
        }
        close $w;
        push @kids, [$pid, $r];
    }
    my ($ok, $no) = (0, 0);
    for my $k (@kids) {
        my $line = readline($k->[1]);
        waitpid($k->[0], 0);
        my ($a, $b) = split ' ', $line;
        $ok += $a; $no += $b;
    }
    return [$ok, $no, sprintf('%.1f s from second %.1f of the minute',
                              time - $start, $start - 60 * int($start / 60))];
}

# a whole run within one minute's window (r/m tiers)
sub same_minute { my $need = shift; my $left = 60 - time % 60; sleep($left + 0.2) if $left < $need }

my $db = 12;
redis($rport, $db, 'FLUSHDB');


# ---- 2 and 3 gateways share one limit ---------------------------------

{
    my @g = map { gateway(redis => $rport, db => $db, zone => 'two', sync => '500ms',
                          rate => '60r/m', workers => $_) } 1, 2;
    sleep 1.5;                                  # all in the registry
    same_minute(12);                            # 3 s of load, slow when
                                                # the machine is busy
    my $res = drive(\@g, 'shared2', 20, 3);     # 120 asked, 60 a minute
    cmp_ok($res->[0], '<=', 60, "2 gateways: at most the quota admitted ($res->[0] of 120, $res->[2])");
    cmp_ok($res->[0], '>=', 54, "2 gateways: the quota used, within 10% on a loaded machine ($res->[0])");
    is($res->[0] + $res->[1], 120, "2 gateways: every request answered 200 or 429");
    stop(@g);
}

{
    my @g = map { gateway(redis => $rport, db => $db, zone => 'three', sync => '500ms',
                          rate => '60r/m') } 1 .. 3;
    sleep 1.5;
    same_minute(12);
    my $res = drive(\@g, 'shared3', 20, 3);     # 180 asked
    cmp_ok($res->[0], '<=', 60, "3 gateways: at most the quota admitted ($res->[0] of 180, $res->[2])");
    cmp_ok($res->[0], '>=', 54, "3 gateways: the quota used, within 10% on a loaded machine ($res->[0])");
    stop(@g);
}


# ---- demand that moves between the gateways' rounds -------------------
#
# Each gateway's share is its demand over the demand of all, as Redis had
# it when that gateway pushed.  Here B's share is given while A's demand
# is small and A's while B's is: each is most of the quota, and neither
# gateway knows the other's count when both then pass requests.  In the
# key's first window the shares are also bounded by what the others hold
# ("r:" fields), so the two together still pass at most the quota.

{
    my ($ga, $gb) = map { gateway(redis => $rport, db => $db, zone => 'moves', sync => '1s',
                                  rate => '60r/m') } 1, 2;
    my %pid = map { my $p = `cat $_->{prefix}/logs/nginx.pid`; chomp $p; ($_->{prefix} => $p) } $ga, $gb;
    sleep 3.5;                                  # both in the registry
    same_minute(25);
    my $min = floor(time / 60);
    my $hkey = "apipolicy:rl:{moves:default:moving}:$min";
    my $get = sub { my %h = split /\n/, redis($rport, $db, "HGETALL $hkey"); \%h };
    my $field = sub { my $g = shift; my ($f) = grep { /:$pid{$g->{prefix}}$/ && !/^(d|r):/ } keys %{$get->()}; $f };
    my $wait = sub { my $cond = shift; for (1 .. 100) { return 1 if $cond->($get->()); sleep 0.1 } 0 };

    # A asks once, B ten times within a second; then both have said
    # their demand, B's being the larger (as rates: one request just after
    # the key began may count for more)
    my ($ok, $no) = (0, 0);
    my $add = sub { $ok += $_[0][0]; $no += $_[0][1] };
    $add->(hit($ga, ['moving'], 1, 1));
    my $okb = 0;
    for (1 .. 10) { my $res = hit($gb, ['moving'], 1, 1); $okb += $res->[0]; $add->($res); sleep 0.1 }
    my ($fa, $fb);
    ok($wait->(sub { $fa = $field->($ga); $fb = $field->($gb); $fa && $fb && ($_[0]{$fb} // 0) == $okb }),
       "both gateways pushed, B all it passed ($okb)");
    sleep 1.2;                                  # B's last push answered

    # A's demand jumps: 60 asked, its next push says so
    $add->(hit($ga, ['moving'], 60, 10));
    my $before = $get->()->{"d:$fa"};
    ok($wait->(sub { ($_[0]{"d:$fa"} // 0) > $before }), "A's new demand reached Redis");
    sleep 0.3;                                  # ... and its answer A

    # now both at once, before B pushes again
    my @kids;
    for my $g ($ga, $gb) {
        pipe(my $r, my $w) or die;
        my $pid = fork // die;
        if (!$pid) { close $r; my $res = hit($g, ['moving'], 60, 60); print $w "@$res\n"; close $w; POSIX::_exit(0) }
        close $w;
        push @kids, [$pid, $r];
    }
    for my $k (@kids) { my ($a, $b) = split ' ', readline($k->[1]); waitpid($k->[0], 0); $ok += $a; $no += $b }

    # DIAG=1: the hash (counts, demands, what each holds) at the end
    diag(join ' ', map { "$_=" . $get->()->{$_} } sort keys %{$get->()}) if $ENV{DIAG};
    cmp_ok($ok, '<=', 60, "demand moving between the gateways' rounds: at most the quota in the key's first window ($ok of " . ($ok + $no) . ")");
    # a share follows its gateway's demand one push late, and B is not
    # pushed between its last request and the burst: what B held when A
    # last pushed stays out of A's reach although B's own share may have
    # shrunk since (33 to 59 passed in nine runs).  The quota is used in
    # steady load (above); here the check is only that both still pass
    cmp_ok($ok, '>=', 20, "... and both gateways still pass requests: at least a third of the quota ($ok)");
    stop($ga, $gb);
}


# ---- a fresh key on two gateways at once ------------------------------

{
    my @g = map { gateway(redis => $rport, db => $db, zone => 'fresh', sync => '100ms',
                          rate => '20r/m') } 1, 2;
    sleep 1;
    same_minute(3);
    # 30 pipelined requests on each, at once, before any sync could say
    # what the other did: each gateway takes at most its 1/G of the quota
    my @kids;
    for my $g (@g) {
        pipe(my $r, my $w) or die;
        my $pid = fork // die;
        if (!$pid) { close $r; my $res = hit($g, ['fresh'], 30, 30); print $w "$res->[0]\n"; close $w; POSIX::_exit(0) }
        close $w;
        push @kids, [$pid, $r];
    }
    my $ok = 0;
    for my $k (@kids) { $ok += readline($k->[1]); waitpid($k->[0], 0) }
    cmp_ok($ok, '<=', 20, "fresh key on 2 gateways at once: at most the quota ($ok of 60)");
    cmp_ok($ok, '>=', 10, "fresh key: each gateway admitted its share ($ok)");
    stop(@g);
}


# ---- 2,000 keys: all reach Redis, and count on the other gateway ------

{
    my @g = map { gateway(redis => $rport, db => $db, zone => 'many', sync => '100ms',
                          rate => '2r/m') } 1, 2;
    sleep 1;
    same_minute(12);
    my @keys = map { "many$_" } 1 .. 2000;
    # one each (a key no sync answered for gets 1/G of the quota), then,
    # once the first answers said only this gateway asks, one more
    my $res = hit($g[0], \@keys, 1, 100);
    sleep 1;
    my $res2 = hit($g[0], \@keys, 1, 100);
    is($res->[0] + $res2->[0], 4000, "2,000 keys, 2 requests each, all admitted on the first gateway");
    sleep 0.5;
    my $min = (floor(time / 60));
    my $synced = redis($rport, $db, qq{EVAL "local n = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do local h = redis.call('HGETALL', k) for i = 1, #h, 2 do if string.sub(h[i], 1, 2) ~= 'd:' and string.sub(h[i], 1, 2) ~= 'r:' and h[i] ~= 't0' and h[i + 1] == '2' then n = n + 1 end end end return n" 0 "apipolicy:rl:{many:default:many*}:$min"});
    is($synced, 2000, "every one of the 2,000 keys is in Redis with the first gateway's count, within 5 intervals");

    # the second gateway: a key the first one used up is refused there
    # once its sync has answered; a key nobody else used is not
    my @probe = qw(many7 many1500 many1999);
    my ($used, $free) = ('', '');
    for my $round (1 .. 3) {
        for my $k (@probe) { $used .= hit($g[1], [$k], 1, 1)->[0] }
        $free .= hit($g[1], ['alone'], 1, 1)->[0];
        sleep 1;
    }
    is(substr($used, 3), '000000', "the second gateway refuses the keys the first one used up, once synced ($used)");
    like($free, qr/^11/, "... and passes a key only it counts ($free)");
    stop(@g);
}


# ---- Redis killed and restarted mid-run -------------------------------

{
    my $port = free_port();
    my $rdir = "$dir/redis";
    mkdir $rdir;
    my @args = ('--port', $port, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
                '--daemonize', 'yes', '--pidfile', "$rdir/redis.pid", '--dir', $rdir,
                '--logfile', "$rdir/redis.log");
    my $up = sub { system('redis-server', @args); for (1 .. 50) { last if redis($port, 0, 'PING') eq 'PONG'; sleep 0.1 } };
    $up->();
    my $g = gateway(redis => $port, db => 0, zone => 'kill', sync => '100ms', rate => '100r/m');
    same_minute(15);
    my $min = floor(time / 60);
    my $key = "apipolicy:rl:{kill:default:k}:$min";
    my $field = sub { my %h = split /\n/, redis($port, 0, "HGETALL $key"); my ($f) = grep { !/^(d:|r:|t0$)/ } keys %h; return $f ? $h{$f} : 'none' };

    hit($g, ['k'], 3, 3);
    sleep 0.5;
    is($field->(), 3, "3 counted, in Redis");

    # Redis forgets the scripts: the EVALSHA answered NOSCRIPT is sent
    # again with the script (EVAL), and the count gets there
    redis($port, 0, 'SCRIPT FLUSH');
    hit($g, ['k'], 1, 1);
    sleep 0.8;
    is($field->(), 4, "after SCRIPT FLUSH (NOSCRIPT), the script sent again: 4 in Redis");

    my $pid = `cat $rdir/redis.pid`; chomp $pid;
    kill 'TERM', $pid;
    for (1 .. 50) { last unless kill 0, $pid; sleep 0.1 }
    my $res = hit($g, ['k'], 2, 2);
    is($res->[0], 2, "Redis down: requests still decided at once, locally");
    sleep 2;                                    # several failed rounds

    $up->();
    sleep 6;                                    # the back-off is 5 s at most
    is($field->(), 6, "Redis back, empty: every count pushed again (6)");

    my $log = `cat $g->{prefix}/logs/error.log`;
    my @down = $log =~ /apipolicy redis: 127\.0\.0\.1:$port [^\n]*working without it/g;
    my @back = $log =~ /apipolicy redis: 127\.0\.0\.1:$port is reachable again/g;
    is(scalar @down, 1, "one line when Redis went away, naming it");
    is(scalar @back, 1, "one line when it came back");
    unlike($log, qr/\[error\] (?!.*apipolicy redis: 127\.0\.0\.1:$port)/, "no other error line (no recv() or connect() line per retry)");

    stop($g);
    $pid = `cat $rdir/redis.pid`; chomp $pid;
    kill 'TERM', $pid;
}

redis($rport, $db, 'FLUSHDB');
done_testing();
