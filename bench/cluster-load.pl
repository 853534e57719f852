#!/usr/bin/perl
# A light, paced load generator for bench/cluster.sh: sends GET requests
# to several gateways at once, each at its own rate, for a bounded time,
# and counts what each one admitted (2xx) and refused (429) per second
# (of the clock the gateways count windows on: the send time).
#
#   cluster-load.pl --ports 8001,8002 --rates 75,75 --seconds 10 \
#                   --path /rs --key k1 [--keys N] [--align 1|60]
#
# --rates are requests per second per gateway; --keys N spreads the
# requests over N keys (KEY-0 .. KEY-(N-1)); --align waits for the next
# whole second (or minute) first, so the first second counted is the
# first window.  Requests are pipelined on one keep-alive connection per
# gateway, a few milliseconds' worth at a time: the load stays paced,
# and the generator takes little CPU.
#
# Prints one line per gateway and second ("gw 1 s 3 admitted 25 refused
# 50"), then "total admitted A refused R first_window F".

use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Getopt::Long;
use Time::HiRes qw(time sleep);

my ($ports, $rates, $seconds, $path, $key, $keys, $align) =
    ('', '', 10, '/', 'k', 1, 0);
GetOptions('ports=s' => \$ports, 'rates=s' => \$rates,
           'seconds=f' => \$seconds, 'path=s' => \$path, 'key=s' => \$key,
           'keys=i' => \$keys, 'align=i' => \$align) or die "bad options\n";

my @ports = split /,/, $ports;
my @rates = split /,/, $rates;
die "one rate per port\n" unless @ports && @ports == @rates;

my (@sock, @inbuf, @pending, @sent, %adm, %ref, @other);
for my $i (0 .. $#ports) {
    $sock[$i] = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $ports[$i],
                                      Proto => 'tcp')
        or die "cannot connect to 127.0.0.1:$ports[$i]: $!\n";
    $sock[$i]->blocking(0);
    $inbuf[$i] = '';
    $pending[$i] = [];
    $sent[$i] = 0;
    $other[$i] = 0;
}

if ($align) {                               # the next whole window
    my $t = time;
    sleep($align - ($t - int($t / $align) * $align));
}

my $start = time;
my $s0 = int($start);                       # the first second counted
my $end = $start + $seconds;
my $sel = IO::Select->new(@sock);
my $n = 0;

sub drain {
    my ($i) = @_;

    while (1) {
        my $h = index($inbuf[$i], "\r\n\r\n");
        last if $h < 0;
        my $head = substr($inbuf[$i], 0, $h);
        my ($len) = $head =~ /\r\nContent-Length:\s*(\d+)/i;
        $len //= 0;
        last if length($inbuf[$i]) < $h + 4 + $len;
        substr($inbuf[$i], 0, $h + 4 + $len, '');
        my ($status) = $head =~ /^HTTP\/1\.\d (\d+)/;
        my $at = shift @{$pending[$i]};
        my $sec = int($at) - $s0;
        if ($status == 429) { $ref{$i}{$sec}++ }
        elsif ($status < 300) { $adm{$i}{$sec}++ }
        else { $other[$i]++ }
    }
}

while (1) {
    my $now = time;
    last if $now >= $end;

    for my $i (0 .. $#ports) {
        my $due = int(($now - $start) * $rates[$i]) - $sent[$i];
        next if $due <= 0;
        my $out = '';
        for (1 .. $due) {
            my $k = $keys > 1 ? "$key-" . ($n++ % $keys) : $key;
            $out .= "GET $path?k=$k HTTP/1.1\r\nHost: gw\r\n\r\n";
            push @{$pending[$i]}, $now;
        }
        $sent[$i] += $due;
        my $off = 0;
        while ($off < length $out) {
            my $w = syswrite($sock[$i], $out, length($out) - $off, $off);
            if (!defined $w) {
                die "write to gateway $i: $!\n" unless $!{EAGAIN};
                # the gateway is slow to read: take its answers meanwhile
                IO::Select->new($sock[$i])->can_read(0.01);
                my $r = sysread($sock[$i], my $buf, 1 << 16);
                if ($r) { $inbuf[$i] .= $buf; drain($i) }
                next;
            }
            $off += $w;
        }
    }

    for my $fh ($sel->can_read(0.004)) {
        my ($i) = grep { $sock[$_] == $fh } 0 .. $#sock;
        my $r = sysread($fh, my $buf, 1 << 16);
        die "gateway $i closed the connection\n" unless $r;
        $inbuf[$i] .= $buf;
        drain($i);
    }
}

# the answers still on their way
my $deadline = time + 5;
while (grep { @{$pending[$_]} } 0 .. $#ports and time < $deadline) {
    for my $fh ($sel->can_read(0.1)) {
        my ($i) = grep { $sock[$_] == $fh } 0 .. $#sock;
        my $r = sysread($fh, my $buf, 1 << 16);
        last unless $r;
        $inbuf[$i] .= $buf;
        drain($i);
    }
}

my ($ta, $tr, $first) = (0, 0, 0);
my $last = int($end) - $s0;
for my $i (0 .. $#ports) {
    for my $s (0 .. $last) {
        my ($a, $r) = ($adm{$i}{$s} // 0, $ref{$i}{$s} // 0);
        next unless $a || $r;
        print "gw ", $i + 1, " s $s admitted $a refused $r\n";
        $ta += $a; $tr += $r;
        $first += $a if $s == 0;
    }
    print "gw ", $i + 1, " other $other[$i]\n" if $other[$i];
    print "gw ", $i + 1, " unanswered ", scalar @{$pending[$i]}, "\n"
        if @{$pending[$i]};
}
print "total admitted $ta refused $tr first_window $first\n";
