package SlowBackend;

# A real, slow HTTP backend for the idempotency suites: a Perl process on
# a free loopback port that serves each connection in a child of its own
# and writes down every call it gets, so that a test can count how often
# a request with a given Idempotency-Key reached it.
#
#   GET|POST /anything?ms=N&size=N&status=N&location=URL
#       waits ms milliseconds, then answers status (default 201) with a
#       JSON body padded to size bytes: {"call":C,"key":"K"} where C is the
#       number of calls seen so far with that key; cut=1 sends half of
#       the body and closes (an upstream that broke off), cookie=1 adds a
#       Set-Cookie.
#
# Also a small HTTP/1.1 client for the scenarios (one connection per
# request, optionally closed early), run in the background with fork.

use strict;
use warnings;

use Fcntl qw(:flock);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use IO::Select;
use POSIX ();
use Storable qw(freeze thaw);
use Time::HiRes qw(sleep time);

our ($Port, $Pid, $Dir);

sub start {
    $Dir = tempdir(CLEANUP => 1);

    my $srv = IO::Socket::INET->new(Listen => 128, LocalAddr => '127.0.0.1',
                                    LocalPort => 0, ReuseAddr => 1, Proto => 'tcp')
        or die "backend: listen: $!";
    $Port = $srv->sockport;

    $Pid = fork();
    die "fork: $!" unless defined $Pid;

    if ($Pid == 0) {
        setpgrp(0, 0);
        $SIG{CHLD} = 'IGNORE';
        while (1) {
            my $c = $srv->accept or next;
            my $kid = fork();
            if (!defined $kid || $kid) { close $c; next; }
            close $srv;
            serve($c);
            POSIX::_exit(0);
        }
    }

    close $srv;
    return $Port;
}

sub stop {
    local $?;
    kill 'KILL', -$Pid if $Pid;
    waitpid($Pid, 0) if $Pid;
    undef $Pid;
}

END { stop() }

sub calls_file { return "$Dir/calls" }

# how many calls carried this Idempotency-Key
sub calls {
    my $key = shift;
    open my $f, '<', calls_file() or return 0;
    my $n = grep { $_ eq "$key\n" } <$f>;
    close $f;
    return $n;
}

sub serve {
    my $c = shift;
    my $buf = '';
    while ($buf !~ /\r\n\r\n/) {
        my $n = sysread $c, $buf, 8192, length $buf;
        return if !$n;
    }
    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    my ($line, @h) = split /\r\n/, $head;
    my %h = map { my ($k, $v) = split /:\s*/, $_, 2; (lc $k, $v) } @h;
    my $len = $h{'content-length'} // 0;
    while (length $body < $len) {
        my $n = sysread $c, $body, 8192, length $body;
        last if !$n;
    }
    my ($path) = $line =~ /^\S+ (\S+)/;
    my %q = $path =~ /[?&]([a-z]+)=([^&]*)/g;
    my $key = $h{'idempotency-key'} // '-';

    open my $f, '>>', calls_file() or die;
    flock $f, LOCK_EX;
    syswrite $f, "$key\n";
    flock $f, LOCK_UN;
    close $f;
    my $call = calls($key);

    sleep(($q{ms} // 0) / 1000);

    my $out = qq({"call":$call,"key":"$key"});
    $out .= ' ' x (($q{size} // 0) - length $out) if ($q{size} // 0) > length $out;
    my $status = $q{status} // 201;
    my $extra = '';
    $extra .= "Location: $q{location}\r\n" if $q{location};
    $extra .= "Set-Cookie: sid=$key-$call\r\n" if $q{cookie};
    my $send = $q{cut} ? substr($out, 0, length($out) / 2) : $out;
    syswrite $c, "HTTP/1.1 $status X\r\nContent-Type: application/json\r\n"
        . "Content-Length: " . length($out) . "\r\n$extra"
        . "Connection: close\r\n\r\n$send";
    close $c;
}

# One request to 127.0.0.1:PORT.  %o: method, path, headers (a hash),
# body, body_after (seconds: the body's second half sent that long after
# the headers and its first half), close_after (seconds: close without
# reading the answer), timeout.
# Returns { status, headers (lowercase names), body, time } or
# { status => 'closed' }.
sub request {
    my ($port, %o) = @_;
    my $t0 = time;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp')
        or return { status => "connect: $!" };
    my $body = $o{body} // '';
    my $req = ($o{method} // 'POST') . " $o{path} HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\nContent-Length: " . length($body) . "\r\n";
    my $hs = $o{headers} // {};
    $req .= "$_: $hs->{$_}\r\n" for sort keys %$hs;
    if (defined $o{body_after}) {
        my $half = int(length($body) / 2);
        syswrite $s, "$req\r\n" . substr($body, 0, $half);
        sleep $o{body_after};
        syswrite $s, substr($body, $half);
    } else {
        syswrite $s, "$req\r\n$body";
    }

    if (defined $o{close_after}) {
        sleep $o{close_after};
        close $s;
        return { status => 'closed', time => time - $t0 };
    }

    my $sel = IO::Select->new($s);
    my $resp = '';
    my $deadline = $t0 + ($o{timeout} // 10);
    while (time < $deadline) {
        last if !$sel->can_read($deadline - time);
        my $n = sysread $s, $resp, 65536, length $resp;
        last if !$n;
    }
    close $s;

    my ($head, $rbody) = split /\r\n\r\n/, $resp, 2;
    return { status => 'timeout', time => time - $t0 } if !defined $head;
    my ($line, @h) = split /\r\n/, $head;
    my ($status) = $line =~ /^HTTP\/1\.\d (\d+)/;
    my %h;
    for (@h) {
        my ($k, $v) = split /:\s*/, $_, 2;
        $h{lc $k} = defined $h{lc $k} ? "$h{lc $k}, $v" : $v;
    }
    return { status => $status, headers => \%h, body => $rbody // '',
             time => time - $t0 };
}

# a POST of {"amount":10} with an Idempotency-Key
sub post {
    my ($port, $key, $path, %o) = @_;
    return request($port, path => $path, headers => { 'Idempotency-Key' => $key },
                   body => '{"amount":10}', %o);
}

# the text of a file (nginx's error.log), '' when there is none
sub slurp {
    open my $f, '<', shift or return '';
    local $/;
    my $s = <$f>;
    close $f;
    return $s;
}

# request() in a child: returns a handle for collect()
sub spawn {
    my ($port, %o) = @_;
    pipe my $r, my $w or die;
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        close $r;
        print $w freeze(request($port, %o));
        close $w;
        POSIX::_exit(0);
    }
    close $w;
    return { pid => $pid, fh => $r };
}

sub collect {
    my $h = shift;
    local $/;
    my $fh = $h->{fh};
    my $data = <$fh>;
    close $fh;
    waitpid $h->{pid}, 0;
    return $data ? thaw($data) : { status => 'lost' };
}

# The location of the scenario blocks: /pay, with the idempotency "zone"
# and any "extra" directives, in front of the backend, and /ok for the
# block's own request.
sub pay_config {
    my ($zone, $extra) = @_;
    $extra = defined $extra ? "        $extra\n" : '';
    return "    location /pay {\n"
         . "        apipolicy_idempotency zone=$zone;\n"
         . $extra
         . "        proxy_pass http://127.0.0.1:\$TEST_NGINX_BACKEND_PORT;\n"
         . "    }\n"
         . "    location = /ok { return 200 \"ok\\n\"; }\n";
}

# A Test::Nginx block preprocessor for suites whose scenarios run in
# --- init: a block without --- config gets pay_config(zone), and one
# without --- request checks that nginx still answers GET /ok with "ok".
sub scenario_defaults {
    my ($block, $zone) = @_;
    $block->set_value('config', pay_config($zone)) if !defined $block->config;
    if (!defined $block->request) {
        $block->set_value('request', "GET /ok\n");
        $block->set_value('response_body', "ok\n");
    }
}

1;
