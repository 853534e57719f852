package RedisTest;

# Real redis-server processes for the suites that need a Redis of their
# own (ACL users, TLS, Sentinel, Cluster): each on a free loopback port,
# in a temporary directory, stopped when the suite ends.

use strict;
use warnings;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Exporter 'import';

our @EXPORT_OK = qw(free_port start_redis stop_redis redis_dir cli rl_count);

my $dir = tempdir('apipolicy-redis-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my %pids;
my $owner = $$;             # forked children (nginx, clients) leave them

sub redis_dir { return $dir }

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, ReuseAddr => 1)
        or die "no free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# start_redis(name, [args...]): a redis-server (or, with "--sentinel" in
# the args, a Sentinel) on a free port; returns the port.  "ready" is a
# redis-cli argument list that must answer PONG (for TLS or ACL servers).
sub start_redis {
    my ($name, %o) = @_;
    my $port = $o{port} || free_port();
    my @args = @{ $o{args} || [] };
    my $conf = "$dir/$name.conf";

    open my $fh, '>', $conf or die "$conf: $!";
    print $fh "bind 127.0.0.1\nsave \"\"\nappendonly no\n"
            . "dir $dir\nlogfile $dir/$name.log\npidfile $dir/$name.pid\n"
            . "daemonize yes\n";
    print $fh "port $port\n" unless $o{no_port};
    print $fh "$_\n" for @{ $o{conf} || [] };
    close $fh;

    # a Sentinel is redis-server --sentinel (Debian's redis-sentinel
    # package is not needed)
    push @args, '--sentinel' if $o{sentinel};
    system('redis-server', $conf, @args) == 0 or die "redis-server $name did not start";

    my @ping = @{ $o{ready} || ['-p', $port] };

    for (1 .. 100) {
        my $out = `redis-cli @ping PING 2>/dev/null`;
        last if $out =~ /PONG/;
        select(undef, undef, undef, 0.05);
    }

    for (1 .. 50) {
        last if -s "$dir/$name.pid";
        select(undef, undef, undef, 0.05);
    }

    open my $p, '<', "$dir/$name.pid" or die "no pid file for $name";
    my $pid = <$p>;
    close $p;
    chomp $pid;
    $pids{$name} = $pid;

    return $port;
}

sub stop_redis {
    my ($name, $signal) = @_;
    my $pid = delete $pids{$name} or return;
    kill($signal || 'TERM', $pid);
    for (1 .. 50) {
        last unless kill 0, $pid;
        select(undef, undef, undef, 0.05);
    }
}

# redis-cli with the given connection arguments, one command
sub cli {
    my ($conn, $cmd) = @_;
    my $out = `redis-cli @$conn $cmd 2>&1`;
    chomp $out;
    return $out;
}

# the count of a rate limit key in Redis (the sum of the gateways' fields
# over every window Redis still holds: a test's requests may fall on both
# sides of a minute), polled until it is "want" or 5 s have passed: the
# sync runs on a timer and the machine may be loaded
sub rl_count {
    my ($conn, $key, $want) = @_;
    my $t = 0;

    for (1 .. 50) {
        select(undef, undef, undef, 0.1);
        my @keys = grep { /:rl:\{\Q$key\E\}:\d+$/ } split /\n/, cli($conn, "KEYS '*'");
        next unless @keys;
        $t = 0;
        for my $k (@keys) {
            # the gateways' count fields ("d:" fields are their demand,
            # "r:" what they hold of the quota)
            my %h = split /\n/, cli($conn, "HGETALL $k");
            $t += $h{$_} for grep { !/^(d:|r:|t0$)/ } keys %h;
        }
        last if $t == $want;
    }

    return $t;
}

END {
    if ($$ == $owner) {
        stop_redis($_, 'KILL') for keys %pids;
    }
}

1;
