package Test::Nginx::Socket;

# A small, compatible re-implementation of openresty/test-nginx's
# Test::Nginx::Socket: the data-driven HTTP/1.x test scaffold used by
# apipolicy's t/*.t suites.  Blocks are parsed by Test::Base (exactly as
# upstream), requests go over plain TCP with IO::Socket::INET, responses
# are parsed with HTTP::Response, every check is one Test::More test named
# as upstream names it.  Supported subset and differences:
# t/compat/README.md.

use strict;
use warnings;

# Inherit from Test::Base (without Spiffy's source filter): the test file's
# "use Test::Nginx::Socket 'no_plan';" runs Test::Base's import, which
# handles the plan arguments and exports Test::More/Test::Base functions
# plus our @EXPORT.
use Test::Base -base;

our $VERSION = '0.33';

use Encode ();
use Digest::MD5 ();
use Digest::SHA ();
use IO::Select;
use IO::Socket::INET;
use Errno qw(EAGAIN EINTR EWOULDBLOCK);
use HTTP::Response;
use List::Util qw(min);
use Test::LongString;
use Time::HiRes qw(sleep time);

use Test::Nginx::Util;

our @EXPORT = qw(
    env_to_nginx is_str plan run_tests run_test
    repeat_each config_preamble worker_connections
    master_process_enabled
    no_long_string workers master_on master_off
    log_level no_shuffle no_root_location use_hup
    server_name
    server_addr server_root html_dir server_port server_port_for_client
    timeout no_nginx_manager check_accum_error_log
    add_block_preprocessor bail_out add_cleanup_handler
    add_response_body_check
);

$RunTestHelper         = \&run_test_helper;
$CheckErrorLog         = \&check_error_log;
$CheckShutdownErrorLog = \&check_shutdown_error_log;

our @ResponseBodyChecks;

sub add_response_body_check ($) {
    push @ResponseBodyChecks, shift;
}

# ---------------------------------------------------------------------------
# Building requests
# ---------------------------------------------------------------------------

# --- more_headers text -> ("Name: value\r\n"..., is_chunked)
sub parse_more_headers ($) {
    my $in = shift;
    my ($out, $is_chunked) = ('', undef);
    for my $header (split /\n+/, $in) {
        next if $header =~ /^\s*#/;
        my ($key, $val) = split /:\s*/, $header, 2;
        $val //= '';
        $is_chunked = 1
            if lc($key) eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }
    return ($out, $is_chunked);
}

# Turns the short request form ("METHOD [URI [VERSION]]\nbody") given as a
# list of packets into the wire form, keeping the packet boundaries:
# request line, Host, Connection, --- more_headers, Content-Length (body
# trimmed, as upstream) and the body.  Returns the new list of packets.
sub build_request_from_packets ($$$$$) {
    my ($name, $more_headers, $is_chunked, $conn, $packets) = @_;

    my $raw = join '', map { $_ // '' } @$packets;
    my ($first, $content) = $raw =~ /\A([^\n]*\n?)(.*)\z/s;

    bail_out("$name - Request line should be non-empty")
        if !defined $first || $first eq '';

    $first =~ /^(\s*)(\S+)( *)((\S+)( *))?((\S+)( *))?(\s*)$/
        or bail_out("$name - Request line is not valid. Should be 'meth "
                    . "[url [version]]' but got \"$first\".");
    my ($meth, $url, $ver) = ($2, $5 // '/', $8 // 'HTTP/1.1');

    my $len_header = '';
    if (!$is_chunked && $content ne ''
        && $more_headers !~ /(?:^|\n)Content-Length:/)
    {
        $content =~ s/^\s+|\s+$//gs;
        $len_header = 'Content-Length: ' . length($content) . "\r\n";
    }

    $more_headers =~ s/(?<!\r)\n/\r\n/gs;

    my $headers = '';
    $headers .= "Host: $ServerName\r\n"
        if $more_headers !~ /(?:^|\n)Host:/msi;
    $headers .= "Connection: $conn\r\n"
        if $more_headers !~ /(?:^|\n)Connection/msi;
    $headers .= "$more_headers$len_header\r\n";

    my $line = "$meth $url $ver\r\n";
    my $head = $line . $headers;
    my $wire = $head . $content;

    # Map each original packet boundary onto the new text: inside the
    # request line it stays at the same offset (the headers go with the
    # packet holding the end of the line), inside the body at the same body
    # offset.
    my @cuts;
    my $pos = 0;
    for my $i (0 .. $#$packets - 1) {
        $pos += length($packets->[$i] // '');
        if ($pos < length $first) {
            push @cuts, min($pos, length($line) - 2);
        } else {
            push @cuts, length($head)
                        + min($pos - length($first), length $content);
        }
    }

    my @out;
    my $prev = 0;
    for my $cut (@cuts, length $wire) {
        $cut = $prev if $cut < $prev;
        push @out, substr($wire, $prev, $cut - $prev);
        $prev = $cut;
    }
    return \@out;
}

# Returns a list of requests; each request is a list of packets
# { value => STRING, delay_before => SECONDS }.
sub get_req_from_block ($) {
    my $block = shift;
    my $name = $block->name;
    my @req_list;

    if (defined $block->raw_request) {
        my $raw = $block->raw_request;
        if (ref $raw && ref $raw eq 'ARRAY') {
            push @req_list, [map { { value => $_ } } @$raw];
        } else {
            push @req_list, [{ value => $raw }];
        }
        return \@req_list;
    }

    my $request = $block->request;
    if (defined $request && !ref $request) {
        # leading comment lines and blank lines are not part of it
        1 while $request =~ s/^\s*\#[^\n]+\s+|^\s+//gs;
    }

    my $more_headers = $block->more_headers || '';

    # the headers for request number $i
    my $headers_for = sub {
        my $i = shift;
        if (ref $more_headers eq 'ARRAY') {
            my $hdr = $more_headers->[$i];
            bail_out("--- more_headers lacks data for the ${i}th request")
                if !defined $hdr;
            return parse_more_headers($hdr);
        }
        return parse_more_headers($more_headers);
    };

    if ($block->pipelined_requests) {
        my $reqs = $block->pipelined_requests;
        bail_out("$name - invalid entries in --- pipelined_requests")
            if !ref $reqs || ref $reqs ne 'ARRAY';

        # all in one write over one keep-alive connection; the last one
        # asks the server to close it
        my $all = '';
        for my $i (0 .. $#$reqs) {
            my ($hdr, $is_chunked) = $headers_for->($i);
            my $conn = $i == $#$reqs ? 'close' : 'keep-alive';
            $all .= build_request_from_packets($name, $hdr, $is_chunked,
                                               $conn, [$reqs->[$i]])->[0];
        }
        push @req_list, [{ value => $all }];
        return \@req_list;
    }

    if (!ref $request) {
        my ($hdr, $is_chunked) = $headers_for->(0);
        my $r = build_request_from_packets($name, $hdr, $is_chunked,
                                           'close', [$request]);
        push @req_list, [{ value => $r->[0] }];
        return \@req_list;
    }

    bail_out("$name - invalid ---request : MUST be string or array of "
             . "requests") if ref $request ne 'ARRAY';

    # several requests, one connection each
    for my $i (0 .. $#$request) {
        my $one_req = $request->[$i];
        my ($hdr, $is_chunked) = $headers_for->($i);

        if (!ref $one_req) {
            my $r = build_request_from_packets($name, $hdr, $is_chunked,
                                               'close', [$one_req]);
            push @req_list, [{ value => $r->[0] }];

        } elsif (ref $one_req eq 'ARRAY') {
            # one request written in several packets
            my @values;
            for my $packet (@$one_req) {
                if (!ref $packet) {
                    push @values, $packet;
                } elsif (ref $packet eq 'HASH') {
                    push @values, $packet->{value};
                } else {
                    bail_out("$name - Invalid syntax. $packet should be a "
                             . "string or hash with value.");
                }
            }
            my $wire = build_request_from_packets($name, $hdr, $is_chunked,
                                                  'close', \@values);
            my @packets;
            for my $j (0 .. $#$wire) {
                my $orig = $one_req->[$j];
                push @packets, ref $orig
                    ? { %$orig, value => $wire->[$j] }
                    : { value => $wire->[$j] };
            }
            push @req_list, \@packets;

        } else {
            bail_out("$name - Invalid syntax. $one_req should be a string "
                     . "or an array of packets.");
        }
    }

    return \@req_list;
}

# ---------------------------------------------------------------------------
# Talking to nginx
# ---------------------------------------------------------------------------

# A failure that is not one of the block's planned checks (connection
# refused, client timeout, broken chunked body).  Upstream also calls
# Test::Builder's no_ending(1) here, which drops the final plan line and
# the exit status; we keep both so the run still reports properly.
sub fail_without_plan_check ($) {
    fail(shift);
}

# Writes the packets (sleeping delay_before, else --- raw_request_middle_delay,
# between them) and reads until the server closes the connection.  Every
# wait is bounded by $timeout seconds of inactivity.  Returns
# (raw response, is HEAD request).
sub send_request ($$$$) {
    my ($req, $middle_delay, $timeout, $block) = @_;
    my $name = $block->name;
    my @bits = @$req;

    my $head_req = (join('', map { $_->{value} } @bits) =~ /^\s*HEAD\s+/)
                   ? 1 : 0;

    my $addr = $block->server_addr_for_client // $ServerAddr;
    my $port = $ServerPortForClient;

    # nginx is listening once it started, so a refusal means it is gone:
    # retry briefly, then report it.
    my ($sock, $err);
    for my $try (1 .. 5) {
        $sock = IO::Socket::INET->new(
            PeerAddr => $addr, PeerPort => $port, Proto => 'tcp',
            Timeout => $timeout,
        );
        last if $sock;
        $err = $!;
        sleep 0.05 * $try;
    }
    if (!$sock) {
        fail_without_plan_check(
            "$name - Can't connect to $addr:$port: $err (aborted)\n");
        return (undef, $head_req);
    }

    local $SIG{PIPE} = 'IGNORE';
    $sock->blocking(0);
    my $sel = IO::Select->new($sock);
    my $resp = '';
    my $timed_out;

    # read what is there without waiting (the server may answer early)
    my $drain = sub {
        while (1) {
            my $n = sysread $sock, my $buf, 4096;
            if (defined $n) {
                return 0 if $n == 0;            # closed
                $resp .= $buf;
                next;
            }
            return 1 if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            return 0;                           # reset etc.
        }
    };

    my $open = 1;
    my $first = 1;
  WRITE:
    for my $bit (@bits) {
        if (!$first) {
            my $delay = $bit->{delay_before} // $middle_delay;
            sleep $delay if $delay;
        }
        $first = 0;

        my $data = $bit->{value} // '';
        my $off = 0;
        while ($off < length $data) {
            if (!$sel->can_write($timeout)) {
                $timed_out = 1;
                last WRITE;
            }
            my $n = syswrite $sock, $data, length($data) - $off, $off;
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
                # the server closed early (e.g. 413): read its answer
                warn "WARNING: $name - write failed: $!\n" if !length $resp;
                last WRITE;
            }
            $off += $n;
        }
        $open = $drain->() if $open;
    }

    if (!$timed_out && defined(my $how = $block->shutdown)) {
        $how = 1 if $how =~ /^$/s;
        shutdown($sock, $how);
    }

    # $timeout bounds each wait (as upstream); this bounds the whole read,
    # in case a server trickles bytes forever
    my $deadline = time + ($timeout * 10 > 60 ? $timeout * 10 : 60);
    while ($open && !$timed_out) {
        if (time > $deadline || !$sel->can_read($timeout)) {
            $timed_out = 1;
            last;
        }
        $open = $drain->();
    }
    close $sock;

    if ($timed_out) {
        if (defined $block->abort) {
            sleep 0.005;
        } else {
            fail_without_plan_check("ERROR: client socket timed out - "
                                    . "$name\n");
        }
    }

    return ($resp, $head_req);
}

# Splits one response off $raw_resp.  Returns (HTTP::Response, raw header
# text, bytes left over for the next pipelined response).
sub parse_response ($$$) {
    my ($name, $raw_resp, $head_req) = @_;
    my $left;

    my $raw_headers = $raw_resp =~ /(.*?\r\n)\r\n/s ? $1 : '';
    my $res = HTTP::Response->parse($raw_resp);

    my $code = $res->code;
    if (defined $code && $code !~ /^\d+$/) {
        undef $code;
        $res->code(undef);
    }
    return ($res, $raw_headers) if $code && ($code == 304 || $code == 101);

    my $enc = $res->header('Transfer-Encoding');
    my $len = $res->header('Content-Length');

    if (defined $enc && $enc eq 'chunked') {
        my $raw = $res->content // '';
        my $decoded = '';
        while (1) {
            if ($raw =~ /\G0[ \t]*\r\n\r\n/gc) {
                $left = $1 if $raw =~ /\G(.+)/gcs;
                last;
            }
            if ($raw =~ /\G[ \t]*([A-Fa-f0-9]+)[ \t]*\r\n/gc) {
                my $size = hex $1;
                if (length($raw) - pos($raw) < $size) {
                    fail_without_plan_check("$name - invalid chunked data "
                        . "received (not enought octets for the data "
                        . "section)");
                    return;
                }
                $decoded .= substr $raw, pos($raw), $size;
                pos($raw) += $size;
                if ($raw !~ /\G\r\n/gc) {
                    fail_without_plan_check("$name - invalid chunked data "
                                            . "received (expected CRLF).");
                    return;
                }
            } elsif ($raw =~ /\G(.+)/gcs) {
                fail_without_plan_check("$name - invalid chunked body "
                                        . "received: $1");
                return;
            } else {
                fail_without_plan_check("$name - no last chunk found - "
                                        . $raw);
                return;
            }
        }
        $res->content($decoded);

    } elsif (defined $len && $len =~ /^\d+$/) {
        my $raw = $res->content // '';
        if ($head_req) {
            # no body follows a HEAD response
            $left = $raw if length $raw;
            $res->content('');
        } elsif (length $raw < $len) {
            warn "WARNING: $name - response body truncated: $len expected, "
                 . "but got " . length($raw) . "\n";
        } elsif (length $raw > $len) {
            $left = substr $raw, $len;
            $res->content(substr $raw, 0, $len);
        }
    }

    return ($res, $raw_headers, $left);
}

# ---------------------------------------------------------------------------
# The per-request driver
# ---------------------------------------------------------------------------

sub run_test_helper ($$$) {
    my ($block, $dry_run, $repeated_req_idx) = @_;
    my $name = $block->name;

    my $reqs = get_req_from_block($block);
    bail_out("$name - request empty") if !@$reqs;

    my $timeout = parse_time($block->timeout) // timeout();

    my ($res, $n, $need_array);
    my $req_idx = 0;

    for my $one_req (@$reqs) {
        my ($raw_resp, $head_req);
        if ($dry_run) {
            $raw_resp = "200 OK HTTP/1.0\r\nContent-Length: 0\r\n\r\n";
        } else {
            ($raw_resp, $head_req) = send_request(
                $one_req, $block->raw_request_middle_delay, $timeout, $block);
        }

        if ($block->pipelined_requests) {
            $n = @{ $block->pipelined_requests };
            $need_array = 1;
        } else {
            $need_array = @$reqs > 1;
        }

        # one pass per response (pipelined responses share one read)
        while (1) {
            $raw_resp //= '';
            my ($raw_headers, $left);

            if (!defined $block->ignore_response) {
                if (defined $block->http09) {
                    $res = HTTP::Response->new(200, 'OK', [], $raw_resp);
                    $raw_headers = '';
                } else {
                    ($res, $raw_headers, $left)
                        = parse_response($name, $raw_resp, $head_req);
                }
            }

            if (!$n) {
                if (defined $left && length $left) {
                    (my $shown = $left)
                        =~ s/([\0-\037\200-\377])/sprintf('\x{%02x}', ord $1)/eg;
                    warn "WARNING: $name - unexpected extra bytes after last "
                         . "chunk in response: \"$shown\"\n";
                }
            } else {
                $raw_resp = $left;
                $n--;
            }

            if (!defined $block->ignore_response) {
                check_error_code($block, $res, $dry_run, $req_idx,
                                 $need_array);
                check_raw_response_headers($block, $raw_headers, $dry_run,
                                           $req_idx, $need_array);
                check_response_headers($block, $res, $raw_headers, $dry_run,
                                       $req_idx, $need_array);
                transform_response_body($block, $res, $req_idx);
                check_response_body($block, $res, $dry_run, $req_idx,
                                    $repeated_req_idx, $need_array);
            }

            # As upstream: the logs are checked after every response but
            # the last one too, each time on what was logged since.
            if ($n || $req_idx < @$reqs - 1) {
                sleep $block->wait if $block->wait;
                check_error_log($block, $res, $dry_run, $repeated_req_idx,
                                $need_array);
                check_access_log($block, $dry_run, $repeated_req_idx)
                    if !defined $block->ignore_response;
            }

            $req_idx++;
            last if !$n;
        }
    }

    sleep $block->wait if $block->wait;

    check_error_log($block, $res, $dry_run, $repeated_req_idx, $need_array);
    check_access_log($block, $dry_run, $repeated_req_idx)
        if !defined $block->ignore_response;
}

# ---------------------------------------------------------------------------
# Checks (one Test::More test each, named as upstream)
# ---------------------------------------------------------------------------

# With several requests the expected values must be arrays, one per request.
sub get_indexed_value ($$$$) {
    my ($name, $value, $req_idx, $need_array) = @_;
    my $is_array = ref $value && ref $value eq 'ARRAY';
    if ($need_array) {
        return $value->[$req_idx] if $is_array;
        bail_out("$name - You asked for many requests, the expected results "
                 . "should be arrays as well.");
    }
    if ($is_array) {
        bail_out("$name - SHOULD NOT HAPPEN: idx != 0 and don't need array.")
            if $req_idx != 0;
        return $value->[0];
    }
    return $value;
}

sub check_error_code ($$$$$) {
    my ($block, $res, $dry_run, $req_idx, $need_array) = @_;
    my $name = $block->name;
    my $got = ($res && $res->code) || '';

    SKIP: {
        skip "$name - tests skipped due to $dry_run", 1 if $dry_run;

        if (defined $block->error_code_like) {
            my $val = get_indexed_value($name, $block->error_code_like,
                                        $req_idx, $need_array);
            like($got, qr/$val/sm, "$name - status code ok");
        } elsif (defined $block->error_code) {
            is($got, get_indexed_value($name, $block->error_code, $req_idx,
                                       $need_array),
               "$name - status code ok");
        } else {
            is($got, 200, "$name - status code ok");
        }
    }
}

sub check_raw_response_headers ($$$$$) {
    my ($block, $raw_headers, $dry_run, $req_idx, $need_array) = @_;
    my $name = $block->name;

    for my $type (qw(like unlike)) {
        my $section = "raw_response_headers_$type";
        my $spec = $block->$section;
        next if !defined $spec;
        SKIP: {
            skip "$name - raw_response_headers_$type - tests skipped due "
                 . "to $dry_run", 1 if $dry_run;
            my $pat = get_indexed_value($name, $spec, $req_idx, $need_array);
            if ($type eq 'like') {
                like($raw_headers, qr/$pat/s, "$name - raw resp headers like");
            } else {
                unlike($raw_headers, qr/$pat/s,
                       "$name - raw resp headers unlike");
            }
        }
    }
}

# "Name: value" must be the value of the header; "!Name" means the header
# is absent (checked case-sensitively on the raw headers, as upstream).
# --- response_headers_like is only looked at without --- response_headers.
sub check_response_headers ($$$$$$) {
    my ($block, $res, $raw_headers, $dry_run, $req_idx, $need_array) = @_;
    my $name = $block->name;

    if (defined $block->response_headers) {
        my $spec = get_indexed_value($name, $block->response_headers,
                                     $req_idx, $need_array);
        my $headers = parse_headers($spec);
        for my $key (ordered_keys($spec, $headers)) {
            my $val = $headers->{$key};
            if (!defined $val) {
                SKIP: {
                    skip "$name - response_headers - tests skipped due to "
                         . "$dry_run", 1 if $dry_run;
                    unlike($raw_headers // '', qr/^\s*\Q$key\E\s*:/ms,
                           "$name - header $key not present in the raw "
                           . "headers");
                }
                next;
            }

            $val =~ s/\$ServerPort\b/$ServerPort/g;
            $val =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;

            my $actual = $res ? $res->header($key) : undef;
            $actual //= '';

            SKIP: {
                skip "$name - response_headers - tests skipped due to "
                     . "$dry_run", 1 if $dry_run;
                is($actual, $val, "$name - header $key ok");
            }
        }

    } elsif (defined $block->response_headers_like) {
        my $spec = get_indexed_value($name, $block->response_headers_like,
                                     $req_idx, $need_array);
        my $headers = parse_headers($spec);
        for my $key (ordered_keys($spec, $headers)) {
            my $val = $headers->{$key} // '';
            my $actual = $res ? $res->header($key) : undef;
            $actual //= '';
            SKIP: {
                skip "$name - response_headers_like - tests skipped due to "
                     . "$dry_run", 1 if $dry_run;
                like($actual, qr/^$val$/, "$name - header $key like ok");
            }
        }
    }
}

# The keys of parse_headers() in the order they appear in the section
# (upstream walks a hash: same tests, random order).
sub ordered_keys ($$) {
    my ($spec, $headers) = @_;
    my (@keys, %seen);
    for my $line (split /\n/, $spec) {
        $line =~ s/^\s+|\s+$//g;
        $line =~ s/^!\s*//;
        my ($key) = split /\s*:\s*/, $line, 2;
        next if !defined $key || $seen{$key}++ || !exists $headers->{$key};
        push @keys, $key;
    }
    return @keys;
}

sub run_filter_helper ($$$) {
    my ($block, $filter, $content) = @_;
    my $name = $block->name;

    return $filter->($content) if ref $filter && ref $filter eq 'CODE';

    bail_out("$name - the --- response_body_filters section only supports "
             . "subroutine reference values and string values") if ref $filter;

    my %builtin = (
        md5_hex  => \&Digest::MD5::md5_hex,
        sha1_hex => \&Digest::SHA::sha1_hex,
        uc       => sub { uc $_[0] },
        lc       => sub { lc $_[0] },
        ucfirst  => sub { ucfirst $_[0] },
        lcfirst  => sub { lcfirst $_[0] },
        length   => sub { length $_[0] },
    );
    my $f = $builtin{$filter}
        or bail_out("$name - unknown filter, \"$filter\", specified in the "
                    . "--- response_body_filters section");
    return $f->($content);
}

sub transform_response_body ($$$) {
    my ($block, $res, $req_idx) = @_;
    return if !defined $res;
    my $content = $res->content;
    return if !defined $content;

    my $filters = $block->response_body_filters;
    return if !defined $filters;
    my $name = $block->name;

    if (!ref $filters) {
        $filters =~ s/^\s+|\s+$//gs;
        $filters = [split /\s+/, $filters];
    } elsif (ref $filters ne 'ARRAY') {
        $filters = [$filters];
    }

    # [[f1, f2], [f3]]: one list of filters per request
    if (ref $filters->[0] eq 'ARRAY') {
        for my $elem (@$filters) {
            bail_out("$name - the --- response_body_filters two-dimensional "
                     . "array only be like [[uc], [lc]] not [[uc], lc]")
                if ref $elem ne 'ARRAY';
        }
        $filters = $filters->[$req_idx];
        bail_out("$name - the ---response_body_filters two-dimensional "
                 . "array unmatch the specified request($req_idx)")
            if !defined $filters;
    }

    $content = run_filter_helper($block, $_, $content) for @$filters;
    $res->content($content);
}

sub check_response_body ($$$$$$) {
    my ($block, $res, $dry_run, $req_idx, $repeated_req_idx, $need_array) = @_;
    my $name = $block->name;

    my $content = $res ? $res->content : undef;
    if (defined $content) {
        $content =~ s/^TE: deflate,gzip;q=0\.3\r\n//gms;
        $content =~ s/^Connection: TE, close\r\n//gms;
    }

    if (defined $block->response_body || defined $block->response_body_eval) {
        my $expected;
        if (defined $block->response_body_eval) {
            diag("$name - response_body_eval is DEPRECATED. Use "
                 . "response_body eval instead.");
            $expected = eval get_indexed_value($name,
                $block->response_body_eval, $req_idx, $need_array);
            warn $@ if $@;
        } else {
            $expected = get_indexed_value($name, $block->response_body,
                                          $req_idx, $need_array);
        }

        Encode::from_to($expected, 'UTF-8', $block->charset)
            if $block->charset && defined $expected && !ref $expected;

        if (defined $expected && !ref $expected) {
            $expected =~ s/\$ServerPort\b/$ServerPort/g;
            $expected =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        }

        my $what = "(repeated req $repeated_req_idx, req $req_idx)";
        SKIP: {
            skip "$name - response_body - tests skipped due to $dry_run", 1
                if $dry_run;
            if (ref $expected) {
                like($content, $expected, "$name - response_body - like $what");
            } elsif ($NoLongString) {
                is($content, $expected,
                   "$name - response_body - response is expected $what");
            } else {
                is_string($content, $expected,
                          "$name - response_body - response is expected $what");
            }
        }

    } elsif (defined $block->response_body_like
             || defined $block->response_body_unlike)
    {
        my ($type, $patterns) = defined $block->response_body_like
            ? ('like', $block->response_body_like)
            : ('unlike', $block->response_body_unlike);

        my $pat = get_indexed_value($name, $patterns, $req_idx, $need_array);
        $pat =~ s/\$ServerPort\b/$ServerPort/g;
        $pat =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
        my $summary = trim($content) // '';

        SKIP: {
            skip "$name - response_body_$type - tests skipped due to "
                 . "$dry_run", 1 if $dry_run;
            my $desc = "$name - response_body_$type - response is expected "
                       . "($summary)";
            if ($type eq 'like') {
                like($content, qr/$pat/s, $desc);
            } else {
                unlike($content, qr/$pat/s, $desc);
            }
        }
    }

    for my $check (@ResponseBodyChecks) {
        $check->($block, $res ? $res->content : undef, $req_idx,
                 $repeated_req_idx, $dry_run);
    }
}

# ---------------------------------------------------------------------------
# Log checks
# ---------------------------------------------------------------------------

sub fmt_str ($) {
    my $str = shift;
    chomp $str;
    $str =~ s/"/\\"/g;
    $str =~ s/\r/\\r/g;
    $str =~ s/\n/\\n/g;
    return $str;
}

# Does a section value (string, qr//, or array of them) mention $pat?
sub value_contains {
    my ($val, $pat) = @_;
    return $val =~ /\Q$pat\E/ if !ref $val || ref $val eq 'Regexp';
    if (ref $val eq 'ARRAY') {
        for my $v (@$val) {
            return 1 if value_contains($v, $pat);
        }
    }
    return undef;
}

# A section value as a list of patterns: one plain substring per line, or
# the strings / qr// objects of an eval'ed array.
sub patterns_of ($) {
    my $pats = shift;
    if (!ref $pats) {
        chomp $pats;
        return [split /\n+/, $pats];
    }
    return [$pats] if ref $pats eq 'Regexp';
    return [@$pats];
}

sub line_matches ($$) {
    my ($line, $pat) = @_;
    return (ref $pat && $line =~ /$pat/) || $line =~ /\Q$pat\E/;
}

# --- error_log / --- access_log: each pattern must match some line.
sub check_present ($$$$$$$) {
    my ($name, $section, $file, $pats, $lines, $dry_run, $suffix) = @_;
    for my $line (@$lines) {
        for my $pat (@$pats) {
            next if !defined $pat;
            if (line_matches($line, $pat)) {
                SKIP: {
                    skip "$name - $section - tests skipped due to $dry_run", 1
                        if $dry_run;
                    pass("$name - pattern \"$pat\" matches a line in "
                         . "$file$suffix");
                }
                undef $pat;
            }
        }
    }
    for my $pat (@$pats) {
        next if !defined $pat;
        SKIP: {
            skip "$name - $section - tests skipped due to $dry_run", 1
                if $dry_run;
            fail("$name - pattern \"$pat\" should match a line in "
                 . "$file$suffix");
        }
    }
}

# --- no_error_log / --- no_access_log: one failure per matching line, one
# pass per pattern that matched nothing.
sub check_absent ($$$$$$$) {
    my ($name, $section, $file, $pats, $lines, $dry_run, $suffix) = @_;
    my %found;
    for my $i (0 .. $#$lines) {
        my $line = $lines->[$i];
        for my $pat (@$pats) {
            next if !defined $pat;
            next if !line_matches($line, $pat);
            $found{$pat}++;
            SKIP: {
                skip "$name - $section - tests skipped due to $dry_run "
                     . "($line)", 1 if $dry_run;
                my @more = @$lines[$i + 1 .. min($i + 9, $#$lines - 1)];
                fail("$name - pattern \"" . fmt_str($pat) . "\" should not "
                     . "match any line in $file but matches line \""
                     . fmt_str($line) . "\"$suffix\n" . join('', @more));
            }
        }
    }
    for my $pat (@$pats) {
        next if !defined $pat || $found{$pat};
        SKIP: {
            skip "$name - $section - tests skipped due to $dry_run", 1
                if $dry_run;
            pass("$name - pattern \"" . fmt_str($pat) . "\" does not match "
                 . "a line in $file$suffix");
        }
    }
}

sub check_access_log ($$$) {
    my ($block, $dry_run, $repeated_req_idx) = @_;
    my $name = $block->name;
    my $lines;
    my $suffix = " (req $repeated_req_idx)";

    if (defined $block->access_log) {
        $lines ||= access_log_data();
        check_present($name, 'access_log', 'access.log',
                      patterns_of($block->access_log), $lines, $dry_run,
                      $suffix);
    }
    if (defined $block->no_access_log) {
        $lines ||= access_log_data();
        check_absent($name, 'no_access_log', 'access.log',
                     patterns_of($block->no_access_log), $lines, $dry_run,
                     $suffix);
    }
}

sub check_error_log ($$$$$) {
    my ($block, $res, $dry_run, $repeated_req_idx, $need_array) = @_;
    my $name = $block->name;
    my $suffix = " (req $repeated_req_idx)";
    my $lines;

    # [alert]/[crit]/[emerg] lines are reported (as warnings) unless the
    # block talks about them
    my %warn_level = (alert => 1, crit => 1, emerg => 1);
    for my $section (qw(error_log no_error_log)) {
        my $val = $block->$section;
        next if !defined $val;
        for my $level (keys %warn_level) {
            delete $warn_level{$level} if value_contains($val, "[$level");
        }
    }

    my $grep_pat = $block->grep_error_log;
    if (defined $grep_pat) {
        $grep_pat = $grep_pat->[$repeated_req_idx]
            if ref $grep_pat && ref $grep_pat eq 'ARRAY';
    } elsif (defined $block->grep_error_log_out) {
        bail_out("$name - No --- grep_error_log defined but "
                 . "--- grep_error_log_out is defined");
    }

    if (defined $grep_pat) {
        my $expected = $block->grep_error_log_out;
        bail_out("$name - No --- grep_error_log_out defined but "
                 . "--- grep_error_log is defined") if !defined $expected;
        $expected = $expected->[$repeated_req_idx]
            if ref $expected && ref $expected eq 'ARRAY';

        SKIP: {
            skip "$name - error_log - tests skipped due to $dry_run", 1
                if $dry_run;

            $lines ||= error_log_data();
            my $matched = '';
            for my $line (@$lines) {
                if ((ref $grep_pat && $line =~ /$grep_pat/)
                    || $line =~ /\Q$grep_pat\E/)
                {
                    $matched .= "$&\n" if $& !~ /\n/;
                }
            }

            my $desc = "$name - grep_error_log_out$suffix";
            if (ref $expected eq 'Regexp') {
                like($matched, $expected, $desc);
            } elsif ($NoLongString) {
                is($matched, $expected, $desc);
            } else {
                is_string($matched, $expected, $desc);
            }
        }
    }

    if (defined $block->error_log) {
        $lines ||= error_log_data();
        check_present($name, 'error_log', 'error.log',
                      patterns_of($block->error_log), $lines, $dry_run,
                      $suffix);
    }

    if (defined $block->no_error_log) {
        $lines ||= error_log_data();
        check_absent($name, 'no_error_log', 'error.log',
                     patterns_of($block->no_error_log), $lines, $dry_run,
                     $suffix);
    }

    if (!$dry_run && %warn_level) {
        $lines ||= error_log_data();
        for my $line (@$lines) {
            if ($line =~ /\[(alert|crit|emerg)\]/ && $warn_level{$1}) {
                warn "WARNING: $name - " . fmt_str($line) . "\n";
            }
        }
    }

    for my $line (@{ $lines || [] }) {
        if ($line =~ /\bAssertion .*?failed\b/) {
            chomp(my $l = $line);
            fail("$name - $l\n");
        }
    }
}

# --- shutdown_error_log / --- no_shutdown_error_log: what nginx logged
# while exiting (checked after it stopped, i.e. before the next block
# starts or at the end of the file).
sub check_shutdown_error_log ($$) {
    my ($block, $dry_run) = @_;
    my $name = $block->name;
    my $lines;

    if (defined $block->no_shutdown_error_log) {
        $lines ||= error_log_data();
        check_absent($name, 'no_shutdown_error_log', 'error.log',
                     patterns_of($block->no_shutdown_error_log), $lines,
                     $dry_run, '');
    }

    if (defined $block->shutdown_error_log) {
        $lines ||= error_log_data();
        check_present($name, 'shutdown_error_log', 'error.log',
                      patterns_of($block->shutdown_error_log), $lines,
                      $dry_run, '');
    }

    for my $line (@{ $lines || [] }) {
        if ($line =~ /\bAssertion .*? failed\.$/) {
            chomp(my $l = $line);
            fail("$name - $l");
        }
    }
}

1;
