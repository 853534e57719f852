package Gateway;

# Extra nginx gateways for the suites that need more than the one
# Test::Nginx runs: each its own nginx process (prefix, master, workers,
# shared memory) on a free loopback port, with the module loaded when it
# is built as a dynamic module; stopped with QUIT when the suite ends.
#
#   use lib 't/lib';
#   use Gateway;
#   my $g = Gateway::start(workers => 2, http => sub {
#       my ($port, $prefix) = @_;
#       return "server { listen 127.0.0.1:$port; ... }";
#   });
#   ... $g->{port}, $g->{prefix}, Gateway::error_log($g) ...
#   Gateway::stop($g);
#
# Each prefix holds ok.txt ("ok\n") for locations that alias it.

use strict;
use warnings;

use File::Temp qw(tempdir);
use IO::Socket::INET;
use Time::HiRes qw(sleep);
use RedisTest ();
use SlowBackend ();

my @running;
my $owner = $$;

# a free loopback port (RedisTest's), the text of a file (SlowBackend's)
*free_port = \&RedisTest::free_port;
*slurp = \&SlowBackend::slurp;

sub error_log { return slurp("$_[0]{prefix}/logs/error.log") }

# start(http => sub { ($port, $prefix) -> text inside http {} },
#       workers => N (1), log_level => LEVEL (info), name => for errors);
# returns { port, prefix } once the port accepts connections
sub start {
    my (%o) = @_;
    my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    my $module = $ENV{TEST_NGINX_LOAD_MODULES};
    my $load = $module ? "load_module $module;" : '';
    my $workers = $o{workers} || 1;
    my $level = $o{log_level} || 'info';
    my $port = free_port();
    my $prefix = tempdir('apipolicy-gw-XXXXXX', TMPDIR => 1, CLEANUP => 1);

    mkdir "$prefix/conf";
    mkdir "$prefix/logs";
    open my $f, '>', "$prefix/ok.txt" or die "$prefix/ok.txt: $!";
    print $f "ok\n";
    close $f;
    chmod 0755, $prefix;
    chmod 0644, "$prefix/ok.txt";

    my $http = $o{http}->($port, $prefix);
    open $f, '>', "$prefix/conf/nginx.conf" or die "$prefix: $!";
    print $f <<"CONF";
$load
worker_processes $workers;
pid logs/nginx.pid;
error_log logs/error.log $level;
events { worker_connections 256; }
http {
    access_log off;
$http
}
CONF
    close $f;

    system($nginx, '-p', "$prefix/", '-c', 'conf/nginx.conf') == 0
        or die(($o{name} || 'nginx') . " did not start: "
               . slurp("$prefix/logs/error.log"));

    for (1 .. 50) {
        last if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
        sleep 0.1;
    }

    my $g = { port => $port, prefix => $prefix };
    push @running, $g;
    return $g;
}

# stop(gateways...): QUIT, then wait up to 5 s for each master to exit
sub stop {
    for my $g (@_) {
        my $pid = slurp("$g->{prefix}/logs/nginx.pid");
        chomp $pid;
        kill 'QUIT', $pid if $pid;
        for (1 .. 50) { last unless $pid && kill 0, $pid; sleep 0.1 }
        @running = grep { $_ != $g } @running;
    }
}

END {
    if ($$ == $owner) {
        local $?;
        stop(@running) if @running;
    }
}

1;
