# "make run" (util/run.sh) as a new user meets it: the default port busy
# gives a free one, said clearly; PORT= busy is refused in words; its own
# redis-server on its own port (never one already there); the example
# answers; "make reload" after editing the running configuration makes
# the edit live; Ctrl-C stops nginx and that redis-server.
#
# The default ports are replaced by busy or free random ones through
# APIPOLICY_RUN_DEFAULT_PORT and APIPOLICY_RUN_DEFAULT_UPSTREAM_PORT, so
# that the test never takes 8080 or 8081 of the machine.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use File::Temp qw(tempdir);
use HTTP::Tiny;
use POSIX qw(setsid WNOHANG);
use Time::HiRes qw(sleep);
use Cwd qw(abs_path);

my $module = (split ' ', $ENV{TEST_NGINX_LOAD_MODULES}
              || abs_path('build/nginx/objs') . '/ngx_http_apipolicy_module.so')[0];

plan skip_all => 'redis-server is not installed'
    if !grep { -x "$_/redis-server" } split /:/, $ENV{PATH};

sub listener {
    return IO::Socket::INET->new(Listen => 5, LocalAddr => '127.0.0.1',
                                 LocalPort => 0, ReuseAddr => 1)
        or die "listen: $!";
}

sub free_port { my $s = listener(); my $p = $s->sockport; close $s; $p }

sub redis_ping {
    my $port = shift;
    my $out = `redis-cli -p $port ping 2>/dev/null`;
    return ($out // '') =~ /PONG/;
}

my $busy = listener();                 # "8080" is taken
my $busy_port = $busy->sockport;
my $upstream_default = free_port();

my $dir = tempdir('apipolicy-run-XXXXXX', TMPDIR => 1, CLEANUP => 1);
# the nginx the suites run against (make test-upstream: another build)
$ENV{NGINX} = $ENV{TEST_NGINX_BINARY} if $ENV{TEST_NGINX_BINARY};

my %env = (RUN_DIR => "$dir/run",
           APIPOLICY_RUN_DEFAULT_PORT => $busy_port,
           APIPOLICY_RUN_DEFAULT_UPSTREAM_PORT => $upstream_default);

# util/run.sh in a session of its own (Ctrl-C reaches the whole group)
sub start_run {
    my %extra = @_;
    my $out = "$dir/out." . time . rand();
    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        setsid();
        %ENV = (%ENV, %env, %extra);
        open STDOUT, '>', $out or die;
        open STDERR, '>&', \*STDOUT or die;
        exec 'sh', 'util/run.sh', $module or POSIX::_exit(127);
    }

    return ($pid, $out);
}

sub slurp { my $f = shift; open my $fh, '<', $f or return ''; local $/; <$fh> }

# run.sh says where the gateway listens just before it starts nginx,
# which reads its configuration first (slowly under ASan): wait until the
# port accepts, so that nothing below edits the file while nginx reads it
sub wait_listen {
    my $port = shift;
    for (1 .. 200) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port);
        return 1 if $s;
        sleep 0.05;
    }
    return 0;
}

# waitpid with a bound: a run that should have failed but serves is
# stopped (its whole group) instead of waited for forever
sub reap {
    my $pid = shift;
    for (1 .. 200) {
        return $? if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    kill 'TERM', -$pid;
    waitpid($pid, 0);
    return 0;
}

sub wait_for {
    my ($out, $re, $pid) = @_;
    for (1 .. 100) {
        my $text = slurp($out);
        return $text if $text =~ $re;
        last if $pid && waitpid($pid, WNOHANG) == $pid;
        sleep 0.1;
    }
    return slurp($out);
}

# 1. the default port busy: another one, said clearly
my $redis_port = free_port();
my ($pid, $out) = start_run(REDIS_PORT => $redis_port);
my $text = wait_for($out, qr/apipolicy gateway on http:\/\/127\.0\.0\.1:(\d+)/, $pid);

like($text, qr/port $busy_port is busy \(another program listens on it\): PORT=\d+ is used instead; set PORT= to choose/,
     'a busy default port is said, with the port used instead');
my ($port) = $text =~ /apipolicy gateway on http:\/\/127\.0\.0\.1:(\d+)/;
ok($port && $port != $busy_port, 'the gateway serves on another port')
    or diag($text);
like($text, qr/demo upstream on 127\.0\.0\.1:$upstream_default\n/,
     'the upstream on its free default port');
like($text, qr/redis-server on 127\.0\.0\.1:$redis_port \(its own; stopped with the gateway\)/,
     'its own redis-server, on REDIS_PORT');
like($text, qr/running configuration: \Q$dir\E\/run\/conf\/gateway\.conf \(edit it, then "make reload"\)/,
     'where the running configuration lives');
ok(redis_ping($redis_port), 'that redis-server answers');

ok(wait_listen($port), 'the gateway listens');

my $http = HTTP::Tiny->new(timeout => 5);
my $res = $http->get("http://127.0.0.1:$port/v1/items");
is($res->{status}, 200, 'the example answers');
like($res->{headers}{deprecation} // '', qr/^@\d+$/, '... with its policies');

my $conf = slurp("$dir/run/conf/gateway.conf");
like($conf, qr/apipolicy_redis 127\.0\.0\.1:$redis_port /,
     'the running configuration uses that Redis');

# 2. an edit of the running configuration, then "make reload"
$conf =~ s{(location /v1/ \{)}{$1\n            add_header X-Edited yes always;};
open my $fh, '>', "$dir/run/conf/gateway.conf" or die $!;
print $fh $conf;
close $fh;

my $reload = `RUN_DIR=$dir/run sh util/run.sh reload 2>&1`;
is($?, 0, 'make reload succeeds') or diag($reload);
like($reload, qr/reloaded \Q$dir\E\/run\/conf\/nginx\.conf/, '... and says so');

my $edited;
for (1 .. 50) {
    $res = $http->get("http://127.0.0.1:$port/v1/items");
    last if $edited = ($res->{headers}{'x-edited'} // '') eq 'yes';
    sleep 0.1;
}
ok($edited, 'the edit is live after the reload');

# 3. a broken edit: nginx -t refuses it, the gateway keeps running
open $fh, '>>', "$dir/run/conf/gateway.conf" or die $!;
print $fh "apipolicy_no_such_directive on;\n";
close $fh;
$reload = `RUN_DIR=$dir/run sh util/run.sh reload 2>&1`;
isnt($?, 0, 'make reload refuses a broken configuration');
like($reload, qr/unknown directive "apipolicy_no_such_directive"/,
     '... with nginx -t\'s message');
is($http->get("http://127.0.0.1:$port/v1/items")->{status}, 200,
   'the gateway keeps serving');

# 4. PORT= busy is refused; REDIS_PORT= of a Redis already there too
my ($pid2, $out2) = start_run(PORT => $busy_port);
isnt(reap($pid2) >> 8, 0, 'PORT= on a busy port: make run fails');
like(slurp($out2), qr/PORT=$busy_port: something already listens on 127\.0\.0\.1:$busy_port; choose another port/,
     '... saying why');

my ($pid3, $out3) = start_run(REDIS_PORT => $redis_port, PORT => free_port(),
                              UPSTREAM_PORT => free_port());
isnt(reap($pid3) >> 8, 0, 'REDIS_PORT= where a Redis already answers: refused, never reused');
like(slurp($out3), qr/REDIS_PORT=$redis_port: something already listens/,
     '... saying why');

# 5. Ctrl-C: nginx and its redis-server stop
kill 'INT', -$pid;
my $gone = 0;
for (1 .. 100) {
    if (waitpid($pid, WNOHANG) == $pid) { $gone = 1; last }
    sleep 0.1;
}
ok($gone, 'Ctrl-C stops make run');
sleep 0.3;
ok(!redis_ping($redis_port), 'its redis-server is stopped');
ok(!$http->get("http://127.0.0.1:$port/v1/items")->{success},
   'the gateway is stopped');

$reload = `RUN_DIR=$dir/run sh util/run.sh reload 2>&1`;
isnt($?, 0, 'make reload without a running gateway fails');
like($reload, qr/no gateway of "make run" is running/, '... saying so');

# never leave anything behind
END {
    if ($pid && kill(0, $pid)) { kill 'TERM', -$pid; }
    if (my $p = slurp("$dir/run/logs/redis.pid")) { chomp $p; kill 'TERM', $p if $p }
}

done_testing();
