# Self-tests of the compat Test::Nginx runner (t/compat/Test/Nginx/*.pm).
#
# Runs each fixture suite under t/compat/fixtures/ as a subprocess
# (perl -I t/compat FIXTURE) against the real nginx binary and checks its
# TAP: suites that must pass pass, and deliberately wrong blocks FAIL with
# the expected test names.  Each fixture gets its own throw-away server
# root; afterwards no nginx of ours may be left running.
#
#   cd /work/main && prove -It/compat t/compat/selftest.t
#
# Environment: TEST_NGINX_BINARY (default /usr/sbin/nginx, else nginx in
# PATH), TEST_NGINX_SERVER_PORT (default 1984), TEST_NGINX_BACKEND_PORT
# (default 1985).  Optional: TEST_NGINX_COMPAT_REF_LIB=/path/to/test-nginx/lib
# also runs the passing fixtures under upstream Test::Nginx and compares
# the test names (slow: upstream sleeps a lot).

use strict;
use warnings;

use Test::More;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

my $compat   = dirname(abs_path(__FILE__));      # holds Test/Nginx/*.pm
my $fixtures = "$compat/fixtures";

my $nginx = $ENV{TEST_NGINX_BINARY};
$nginx ||= '/usr/sbin/nginx' if -x '/usr/sbin/nginx';
$nginx ||= 'nginx' if grep { -x "$_/nginx" } split /:/, $ENV{PATH} // '';
plan skip_all => 'no nginx binary (set TEST_NGINX_BINARY)' if !$nginx;

my $echo_so = '/usr/lib/nginx/modules/ngx_http_echo_module.so';

# Runs one fixture; returns a hash with exit, out (stdout+stderr), tests
# ([ok, number, name] in order), elapsed and the server root it used.
sub run_fixture {
    my ($file, %env) = @_;
    my $lib = delete $env{_lib} // $compat;
    my $tmp = tempdir('compat-selftest-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    push @main::TMPS, $tmp;
    my $out_file = "$tmp/out.txt";

    my %child_env = %ENV;
    # the fixtures decide about these themselves
    delete $child_env{$_} for grep {
        /^TEST_NGINX_(?:USE_HUP|LOAD_MODULES|MASTER_PROCESS|LOG_LEVEL|NO_CLEAN
                      |RANDOMIZE|USE_HTTP[23]|CHECK_LEAK|HTML_DIR
                      |NO_NGINX_MANAGER|FORCE_RESTART_ON_TEST|SERVROOT)$/x
    } keys %child_env;
    %child_env = (%child_env,
                  TEST_NGINX_BINARY    => $nginx,
                  TEST_NGINX_SERVROOT  => "$tmp/servroot",
                  TEST_NGINX_NO_SHUFFLE => 1,
                  %env);

    my $start = time;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        %ENV = %child_env;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out_file or die;
        open STDERR, '>&', \*STDOUT or die;
        exec $^X, "-I$lib", "$fixtures/$file" or POSIX::_exit(127);
    }

    # watchdog: a fixture must never hang the self-test
    my $status;
    my $deadline = time + 180;
    while (1) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) {
            $status = $?;
            last;
        }
        if (time > $deadline) {
            kill 'TERM', $pid;
            sleep 2;
            kill 'KILL', $pid;
            waitpid($pid, 0);
            $status = -1;
            last;
        }
        sleep 0.05;
    }

    open my $in, '<', $out_file or die "$out_file: $!";
    my $out = do { local $/; <$in> } // '';
    close $in;

    my @tests;
    for my $line (split /\n/, $out) {
        push @tests, [$1 eq 'ok', $2, $3]
            if $line =~ /^(ok|not ok) (\d+) - (.*)$/;
    }

    return {
        file     => $file,
        exit     => $status == -1 ? -1 : $status >> 8,
        out      => $out,
        tests    => \@tests,
        elapsed  => time - $start,
        servroot => "$tmp/servroot",
        tmp      => $tmp,
    };
}

# nginx processes (not zombies) whose command line mentions $dir
sub leftover_nginx {
    my $dir = shift;
    my @pids;
    for my $proc (glob '/proc/[0-9]*') {
        open my $fh, '<', "$proc/cmdline" or next;
        my $cmd = do { local $/; <$fh> } // '';
        next if $cmd !~ /nginx/ || index($cmd, $dir) < 0;
        open my $st, '<', "$proc/stat" or next;
        my $stat = <$st> // '';
        next if $stat =~ /^\d+ \(.*\) [ZX] /s;
        push @pids, $proc =~ m{(\d+)$};
    }
    return @pids;
}

# the tests whose name matches $re: list of [ok, number, name]
sub tests_like {
    my ($r, $re) = @_;
    return grep { $_->[2] =~ $re } @{ $r->{tests} };
}

sub show_output {
    my $r = shift;
    diag("--- output of $r->{file} (exit $r->{exit}):\n$r->{out}");
}

# one check: the fixture produced a test named like $re, with this result
sub has_test {
    my ($r, $re, $want_ok, $label) = @_;
    my @t = tests_like($r, $re);
    my $ok = @t && !grep { ($_->[0] ? 1 : 0) != ($want_ok ? 1 : 0) } @t;
    ok($ok, "$r->{file}: $label") or do {
        diag("wanted " . ($want_ok ? 'ok' : 'not ok') . " for $re; got: "
             . (@t ? join('; ', map { ($_->[0] ? 'ok' : 'not ok')
                                      . " $_->[1]" } @t) : 'no such test'));
    };
}

sub no_leftovers {
    my $r = shift;
    my @pids = leftover_nginx($r->{tmp});
    ok(!@pids, "$r->{file}: no nginx left running")
        or diag("leftover nginx pids: @pids");
}

sub all_pass {
    my ($r, $count) = @_;
    my @failed = grep { !$_->[0] } @{ $r->{tests} };
    my $good = $r->{exit} == 0 && !@failed && @{ $r->{tests} } == $count
               && $r->{out} =~ /^1\.\.$count$/m;
    ok($good, "$r->{file}: exits 0, all $count tests pass")
        or show_output($r);
}

# ---------------------------------------------------------------------------

subtest 'pass-basic.t: the common sections all pass' => sub {
    my $r = run_fixture('pass-basic.t');
    all_pass($r, 78);

    has_test($r, qr/TEST 2: a block without --- config .* response_body/, 1,
             'a config-less block reuses the running nginx');
    is(scalar(tests_like($r, qr/TEST 15: pipelined.* - status code ok/)), 3,
       'pipelined_requests: one status check per response');
    has_test($r, qr/TEST 16: must_die .* - die as expected/, 1, 'must_die');
    has_test($r, qr/TEST 16: .* pattern "unknown directive "no_such_directive_here"" matches/,
             1, 'must_die: error_log sees the [emerg] line');
    has_test($r, qr/TEST 22: .* pattern "signal 3 \(SIGQUIT\) received" matches/,
             1, 'shutdown_error_log checked after nginx quit');
    ok(!tests_like($r, qr/TEST (?:26|28):/),
       'pass-basic.t: --- SKIP and blocks after --- LAST do not run');

    # the generated nginx.conf (of the last block) has upstream's shape
    my $sr = $r->{servroot};
    open my $in, '<', "$sr/conf/nginx.conf" or die "nginx.conf: $!";
    my $conf = do { local $/; <$in> };
    my $port = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
    my @want = (
        qr/^worker_processes  1;$/m,
        qr/^daemon on;$/m,
        qr/^master_process off;$/m,
        qr/^error_log \Q$sr\E\/logs\/error\.log debug;$/m,
        qr/^pid       \Q$sr\E\/logs\/nginx\.pid;$/m,
        qr/^http \{\n    access_log \Q$sr\E\/logs\/access\.log; client_body_temp_path \Q$sr\E\/client_body_temp; proxy_temp_path \Q$sr\E\/proxy_temp; fastcgi_temp_path \Q$sr\E\/fastcgi_temp; scgi_temp_path \Q$sr\E\/scgi_temp; uwsgi_temp_path \Q$sr\E\/uwsgi_temp;$/m,
        qr/^    default_type text\/plain;$/m,
        qr/^    keepalive_timeout  68000ms;$/m,
        qr/^        listen          $port;$/m,
        qr/^        server_name     'localhost';$/m,
        qr/^        client_max_body_size 30M;$/m,
        qr/# Begin test case config\.\.\.\n    location = \/t \{/,
        qr/^        location \/ \{\n            root \Q$sr\E\/html;\n            index index\.html index\.htm;\n        \}$/m,
        qr/^events \{\n    accept_mutex off;\n\n    worker_connections  64;\n\}$/m,
    );
    push @want, qr/^user root;$/m if $> == 0;
    my @missing = grep { $conf !~ $_ } @want;
    ok(!@missing, 'pass-basic.t: nginx.conf has the upstream layout')
        or diag("missing: @missing\n--- nginx.conf:\n$conf");

    no_leftovers($r);
};

subtest 'pass-repeat.t: repeat_each() and an explicit plan' => sub {
    my $r = run_fixture('pass-repeat.t');
    all_pass($r, 18);
    like($r->{out}, qr/\A1\.\.18$/m, 'pass-repeat.t: plan printed first');
    no_leftovers($r);
};

subtest 'pass-only.t: --- ONLY' => sub {
    my $r = run_fixture('pass-only.t');
    all_pass($r, 2);
    ok(!tests_like($r, qr/TEST [13]:/), 'pass-only.t: other blocks skipped');
    no_leftovers($r);
};

subtest 'pass-hup.t: HUP mode keeps nginx running and reloads' => sub {
    my $r = run_fixture('pass-hup.t');
    all_pass($r, 9);
    has_test($r, qr/TEST 2: .* - status code ok/, 1,
             'shared memory zone survived the reload');
    has_test($r, qr/TEST 2: .* - header X-Block ok/, 1,
             'the reloaded configuration is live');
    has_test($r, qr/one nginx master for all blocks/, 1,
             'same master process throughout');
    open my $in, '<', "$r->{servroot}/conf/nginx.conf" or die $!;
    my $conf = do { local $/; <$in> };
    like($conf, qr/^master_process on;$/m, 'pass-hup.t: master_process on');
    like($conf, qr/server_name     'Test-Nginx';\n\n        location = \/ver \{/,
         'pass-hup.t: the /ver server for reload checks');
    no_leftovers($r);
};

subtest 'pass-load-module.t: TEST_NGINX_LOAD_MODULES' => sub {
    my $r = run_fixture('pass-load-module.t');
    all_pass($r, 2);
    open my $in, '<', "$r->{servroot}/conf/nginx.conf" or die $!;
    my $conf = do { local $/; <$in> };
    like($conf, qr{^load_module /nonexistent/compat/ngx_compat_missing_module\.so;}m,
         'pass-load-module.t: load_module line in the main context');
    no_leftovers($r);
};

SKIP: {
    skip "no $echo_so (libnginx-mod-http-echo)", 1 if !-f $echo_so;
    subtest 'pass-echo.t: with a real dynamic module' => sub {
        my $r = run_fixture('pass-echo.t', TEST_NGINX_LOAD_MODULES => $echo_so);
        all_pass($r, 6);
        no_leftovers($r);
    };
}

subtest 'fail-checks.t: each wrong block fails where it should' => sub {
    my $r = run_fixture('fail-checks.t');
    isnt($r->{exit}, 0, 'fail-checks.t: exits non-zero');
    like($r->{out}, qr/^1\.\.26$/m, 'fail-checks.t: ends with its plan');

    my @cases = (
        [qr/TEST 1: wrong body - status code ok/, 1, 'right status passes'],
        [qr/TEST 1: wrong body - response_body - response is expected/, 0,
         'wrong body'],
        [qr/TEST 2: wrong status - status code ok/, 0,
         'wrong status (default expectation is 200)'],
        [qr/TEST 3: missing header - header X-Missing ok/, 0,
         'missing header'],
        [qr/TEST 4: .* - header X-Present not present in the raw headers/, 0,
         '!Header present'],
        [qr/TEST 5: .* - pattern "no such message ever" should match a line in error\.log \(req 0\)/,
         0, 'error_log pattern absent'],
        [qr/TEST 6: must_die on a good config - die as expected/, 0,
         'must_die on a good config'],
        [qr/TEST 7: .* - pattern "No such file or directory" should not match any line in error\.log but matches line/,
         0, 'no_error_log pattern present'],
        [qr/TEST 8: .* - response_body_like - response is expected/, 0,
         'response_body_like mismatch'],
        [qr/TEST 9: .* - header X-Num like ok/, 0,
         'response_headers_like mismatch'],
        [qr/TEST 10: .* - grep_error_log_out \(req 0\)/, 0,
         'grep_error_log_out mismatch'],
        [qr/ERROR: client socket timed out - .*TEST 12:/, 0,
         'client timeout without --- abort'],
        [qr/TEST 13: .* - die as expected/, 1, 'must_die that dies passes'],
        [qr/TEST 14: .* - Can't connect to [\d.]+:\d+: Connection refused \(aborted\)/,
         0, 'connection refused reported cleanly'],
    );
    has_test($r, @$_[0, 1], $_->[2]) for @cases;

    my @pipelined = tests_like($r, qr/TEST 11: .* - status code ok/);
    is_deeply([map { $_->[0] ? 1 : 0 } @pipelined], [1, 0],
              'fail-checks.t: pipelined error_code eval [200, 200] vs 200, 503');

    is(scalar(grep { !$_->[0] } @{ $r->{tests} }), 15,
       'fail-checks.t: 15 failures in all')
        or show_output($r);
    no_leftovers($r);
};

subtest 'fail-start.t: a broken config fails fast with [emerg]' => sub {
    my $r = run_fixture('fail-start.t');
    has_test($r, qr/TEST 1: broken config - failed to start nginx/, 0,
             'start failure reported as a failing test');
    like($r->{out},
         qr/\[emerg\] unknown directive "this_directive_does_not_exist"/,
         "fail-start.t: nginx's [emerg] text in the diagnostic");
    cmp_ok($r->{elapsed}, '<', 10, 'fail-start.t: no 30 s retry loop');
    has_test($r, qr/TEST 2: .* - response_body/, 1,
             'the next block runs normally');
    isnt($r->{exit}, 0, 'fail-start.t: exits non-zero');
    no_leftovers($r);
};

subtest 'fail-hup.t: a reload refused by nginx fails fast' => sub {
    my $r = run_fixture('fail-hup.t');
    has_test($r, qr/TEST 2: .* - failed to reload configuration: .*\[emerg\] .*unknown directive/,
             0, 'refused reload reported with [emerg]');
    has_test($r, qr/TEST 2: .* - response_body/, 1,
             'nginx keeps serving the previous configuration');
    cmp_ok($r->{elapsed}, '<', 15, 'fail-hup.t: bounded');
    no_leftovers($r);
};

subtest 'bail-env.t: undefined $TEST_NGINX_ variable' => sub {
    my $r = run_fixture('bail-env.t');
    like($r->{out},
         qr/^Bail out!.*No environment TEST_NGINX_COMPAT_SURELY_UNDEFINED defined/m,
         'bail-env.t: bails out naming the variable');
    isnt($r->{exit}, 0, 'bail-env.t: exits non-zero');
    no_leftovers($r);
};

SKIP: {
    my $ref = $ENV{TEST_NGINX_COMPAT_REF_LIB};
    skip 'set TEST_NGINX_COMPAT_REF_LIB to compare with upstream', 1
        if !$ref || !-f "$ref/Test/Nginx/Socket.pm";

    subtest 'same test names as upstream Test::Nginx' => sub {
        for my $f (qw(pass-basic.t pass-repeat.t pass-only.t pass-hup.t
                      fail-checks.t))
        {
            my $mine = run_fixture($f);
            my $theirs = run_fixture($f, _lib => $ref);
            # upstream walks response_headers in hash order: sort names
            my $norm = sub {
                [sort map { ($_->[0] ? 'ok' : 'not ok') . " $_->[2]" }
                 @{ $_[0]{tests} }];
            };
            my $fix = sub {
                my $r = shift;
                [map { s/\Q$r->{tmp}\E/TMP/g; s/\d+\\?#\d+/PID/g;
                       s{\d{4}/\d\d/\d\d \d\d:\d\d:\d\d }{}g; $_ }
                 @{ $norm->($r) }];
            };
            is_deeply($fix->($mine), $fix->($theirs),
                      "$f: same TAP as upstream");
        }
    };
}

# Nothing of ours may listen any more (only ours: other checkouts may run
# their self-test at the same time on this machine).
is_deeply([map { leftover_nginx($_) } @main::TMPS], [],
          'no self-test nginx left running at all');

done_testing();
