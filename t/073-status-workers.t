# apipolicy_status with several workers: the workers count in one shared
# zone, whichever of them serves a request or the read of /status.
# Sixteen clients at once, spread over two workers by a reuseport listener,
# must be counted exactly; after "nginx -s reload" the new workers count on
# top of the old workers' counts, none lost.
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use RedisTest qw(free_port);
use HTTP::Tiny;
use POSIX ();
use Time::HiRes qw(sleep);

$ENV{TEST_NGINX_SPREAD_PORT} = free_port();

master_on();
workers(2);
no_shuffle();

my $TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIiwiZXhwIjo0MTAyNDQ0ODAwfQ'
          . '.VlWxZRhYfRBSZT_-DBcxf1yDOuAvsaqFuM30CKXMyU8';

sub url { return "http://127.0.0.1:$ENV{TEST_NGINX_SPREAD_PORT}$_[0]" }

sub status {
    my $r = HTTP::Tiny->new->get(url('/status'));
    my ($requests) = $r->{content} =~ /"requests":(\d+),/;
    my ($verified) = $r->{content} =~ /"jwt":\{"requests":\{"verified":(\d+),/;
    my ($missing) = $r->{content} =~ /"TOKEN_MISSING":(\d+)/;
    return ($requests // -1, $verified // -1, $missing // -1);
}

# CLIENTS processes at once, each sending N requests on a connection of its
# own (one in three without a token: 401): how many answers each worker's
# pid gave, and how many of each status
sub load {
    my ($clients, $n) = @_;
    my @kids;
    for (1 .. $clients) {
        pipe(my $rd, my $wr) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $rd;
            my $http = HTTP::Tiny->new(keep_alive => 1);
            my %pids;
            for my $i (1 .. $n) {
                my %h = $i % 3 ? (Authorization => "Bearer $TOKEN") : ();
                my $r = $http->get(url('/api'), { headers => \%h });
                $pids{$r->{headers}{'x-pid'} // 'none'}++;
                $pids{"status-$r->{status}"}++;
            }
            print $wr join(' ', %pids), "\n";
            close $wr;
            POSIX::_exit(0);
        }
        close $wr;
        push @kids, [$pid, $rd];
    }
    my %all;
    for my $k (@kids) {
        my $fh = $k->[1];
        my %got = split ' ', scalar(<$fh>) // '';
        $all{$_} += $got{$_} for keys %got;
        waitpid($k->[0], 0);
    }
    return %all;
}

sub workers_spread {
    my ($r0, $v0, $m0) = status();
    my ($r1) = status();
    my $own = $r1 - $r0;            # a read of /status, if it is counted

    my %got = load(16, 30);
    my @pids = grep { /^\d+$/ } keys %got;
    ok(@pids >= 2, "both workers answered (" . join(',', %got) . ")");
    is($got{'status-200'}, 16 * 20, "the requests with a token passed");
    is($got{'status-401'}, 16 * 10, "the requests without one were refused");

    my ($r2, $v2, $m2) = status();
    is($r2 - $r1, 16 * 30 + $own, "every request counted once, whichever worker served it");
    is($v2 - $v0, 16 * 20, "every verified token counted");
    is($m2 - $m0, 16 * 10, "every refusal counted");

    # a reload: new workers; the old workers' counts stay
    my $pidfile = $Test::Nginx::Util::PidFile;
    open my $fh, '<', $pidfile or die "$pidfile: $!";
    chomp(my $master = <$fh>);
    kill 'HUP', $master;
    my %old = map { $_ => 1 } @pids;
    my $new = 0;
    for (1 .. 100) {
        sleep 0.1;
        my $r = HTTP::Tiny->new->get(url('/api'), { headers => { Authorization => "Bearer $TOKEN" } });
        if (defined $r->{headers}{'x-pid'} && !$old{$r->{headers}{'x-pid'}}) {
            $new = 1;
            last;
        }
    }
    ok($new, "the reload's workers answer");

    # a probe is counted in its LOG phase, after its answer was sent: read
    # the counters until that has happened (two reads apart only by the
    # read itself)
    my ($r3, $v3) = status();
    for (1 .. 20) {
        sleep 0.05;
        my ($r, $v) = status();
        my $settled = ($r - $r3 == $own && $v == $v3);
        ($r3, $v3) = ($r, $v);
        last if $settled;
    }
    %got = load(16, 30);
    my ($r4, $v4) = status();
    is($r4 - $r3, 16 * 30 + $own, "after the reload, every request counted once");
    is($v4 - $v3, 16 * 20, "after the reload, every verified token counted");
    ok($r3 >= $r2 + $own, "after the reload, the counts before it are still there");
}

run_tests();

__DATA__

=== TEST 1: two workers, sixteen clients at once: every request counted once; a reload keeps the counts and the new workers add to them
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_SPREAD_PORT reuseport;
        location /api {
            apipolicy_jwt on;
            apipolicy_jwt_secret 0123456789abcdef0123456789abcdef;
            add_header X-Pid $pid always;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
        }
        location = /status { apipolicy_status; }
    }
--- config
    location /backend { return 200 "ok\n"; }
--- init
main::workers_spread();
--- request
GET /backend
--- response_body
ok
--- timeout: 20
