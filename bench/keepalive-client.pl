#!/usr/bin/perl
# Sends COUNT requests over one keep-alive HTTP/1.1 connection and reads
# each answer in full; used by bench/instructions.sh, where the gateway
# runs under valgrind and a fixed number of requests matters, not speed.
#
#   keepalive-client.pl PORT PATH COUNT [options]
#     -H 'Name: value'   a header (repeatable)
#     --post BODY        POST this body (Content-Type: application/json)
#     --new-key          a new Idempotency-Key on every request
# Prints the status codes seen ("200 x400") on stderr; exits non-zero when
# the connection fails.

use strict;
use warnings;
use IO::Socket::INET;

my ($port, $path, $count, @opts) = @ARGV;
die "usage: $0 PORT PATH COUNT [options]\n" unless $count;

my (@headers, $body, $new_key);
while (@opts) {
    my $o = shift @opts;
    if ($o eq '-H') { push @headers, shift @opts }
    elsif ($o eq '--post') { $body = shift @opts }
    elsif ($o eq '--new-key') { $new_key = 1 }
    else { die "unknown option $o\n" }
}

my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                 Proto => 'tcp')
    or die "connect to $port: $!\n";
binmode $sock;

my %seen;
my $prefix = "$$-" . time . "-";

for my $n (1 .. $count) {
    my $req = (defined $body ? 'POST' : 'GET') . " $path HTTP/1.1\r\n"
              . "Host: 127.0.0.1\r\n";
    $req .= "$_\r\n" for @headers;
    $req .= "Idempotency-Key: $prefix$n\r\n" if $new_key;
    if (defined $body) {
        $req .= "Content-Type: application/json\r\n"
                . "Content-Length: " . length($body) . "\r\n";
    }
    $req .= "\r\n" . ($body // '');
    print $sock $req or die "write: $!\n";

    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        my $r = sysread($sock, $head, 65536, length $head);
        die "connection closed after $n requests\n" unless $r;
    }
    my ($h, $rest) = split /\r\n\r\n/, $head, 2;
    my ($status) = $h =~ m{^HTTP/1\.1 (\d+)} or die "bad answer\n";
    $seen{$status}++;

    if ($h =~ /^Transfer-Encoding:\s*chunked/mi) {
        while (1) {
            while ($rest !~ /\r\n/) {
                sysread($sock, $rest, 65536, length $rest) or die "eof\n";
            }
            $rest =~ s/^([0-9a-fA-F]+)[^\r]*\r\n// or die "bad chunk\n";
            my $len = hex $1;
            while (length $rest < $len + 2) {
                sysread($sock, $rest, 65536, length $rest) or die "eof\n";
            }
            substr($rest, 0, $len + 2, '');
            if ($len == 0) { last }
        }
    } else {
        my ($len) = $h =~ /^Content-Length:\s*(\d+)/mi;
        $len //= 0;
        while (length $rest < $len) {
            sysread($sock, $rest, 65536, length $rest) or die "eof\n";
        }
    }
    die "connection: close after $n requests\n" if $h =~ /^Connection:\s*close/mi;
}

print STDERR join(' ', map { "$_ x$seen{$_}" } sort keys %seen), "\n";
