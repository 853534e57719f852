package Test::Nginx::Util;

# A small re-implementation of the part of openresty/test-nginx's
# Test::Nginx::Util that apipolicy's suites use: configuration state,
# nginx.conf generation, the nginx process life cycle (start, HUP reload,
# stop) and the per-block driver called by run_tests().  The request and
# response checks live in Test::Nginx::Socket.
#
# Semantics follow upstream test-nginx 0.33 (names, defaults, generated
# nginx.conf, TAP test names); see t/compat/README.md for the supported
# subset and for the places where this runner deliberately differs.

use strict;
use warnings;

our $VERSION = '0.33';

# Lets wrappers and suites tell this runner from the upstream one.
our $IsCompat = 1;

use base 'Exporter';

use POSIX qw(WNOHANG);
use File::Spec ();
use File::Path qw(make_path remove_tree);
use File::Find qw(find);
use File::Temp ();
use List::Util qw(shuffle);
use Scalar::Util qw(looks_like_number);
use Time::HiRes qw(sleep time);
use IO::Socket::INET;
use IO::Select;
use Test::More ();
use Test::LongString;
use Carp qw(croak);

our @EXPORT = qw(
    expand_env_in_text
    env_to_nginx
    is_str
    check_accum_error_log
    is_running
    $NoLongString
    no_long_string
    $ServerAddr
    server_addr
    $ServerName
    server_name
    parse_time
    verbose
    sleep_time
    bail_out
    add_cleanup_handler
    access_log_data
    error_log_data
    setup_server_root
    write_config_file
    get_canon_version
    get_nginx_version
    trim
    show_all_chars
    parse_headers
    run_tests
    run_test
    get_pid_from_pidfile
    $ServerPortForClient
    $ServerPort
    $NginxVersion
    $PidFile
    $ServRoot
    $ConfFile
    $RunTestHelper
    $CheckErrorLog
    $CheckShutdownErrorLog
    $NoNginxManager
    $RepeatEach
    add_block_preprocessor
    timeout
    worker_connections
    workers
    master_on
    master_off
    config_preamble
    repeat_each
    master_process_enabled
    log_level
    no_shuffle
    no_root_location
    html_dir
    server_root
    server_port
    server_port_for_client
    no_nginx_manager
    use_hup
);

# ---------------------------------------------------------------------------
# Settings (environment first, then the setter functions below)
# ---------------------------------------------------------------------------

sub default_binary {
    return $ENV{TEST_NGINX_BINARY} if $ENV{TEST_NGINX_BINARY};
    # Upstream defaults to "nginx" from PATH; Debian's binary lives here.
    return -x '/usr/sbin/nginx' ? '/usr/sbin/nginx' : 'nginx';
}

our $NginxBinary          = default_binary();
our $UseHup               = $ENV{TEST_NGINX_USE_HUP};
our $Verbose              = $ENV{TEST_NGINX_VERBOSE};
our $NoNginxManager       = $ENV{TEST_NGINX_NO_NGINX_MANAGER} || 0;
our $LoadModules          = $ENV{TEST_NGINX_LOAD_MODULES};
our $NoShuffle            = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $Timeout              = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $CheckAccumErrLog     = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $PostponeOutput       = $ENV{TEST_NGINX_POSTPONE_OUTPUT};
our $EventType            = $ENV{TEST_NGINX_EVENT_TYPE};
our $WorkerUser           = $ENV{TEST_NGINX_WORKER_USER};
our $Workers              = 1;
our $WorkerConnections    = 64;
our $LogLevel             = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $DaemonEnabled        = 'on';
our $ServerAddr           = '127.0.0.1';
our $ServerName           = 'localhost';
our $ServerPort           = $ENV{TEST_NGINX_SERVER_PORT}
                            || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerPortForClient  = $ENV{TEST_NGINX_CLIENT_PORT}
                            || $ServerPort || 1984;
our $NoRootLocation       = 0;
our $TestNginxSleep       = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $ForceRestartOnTest   = defined $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST}
                            ? $ENV{TEST_NGINX_FORCE_RESTART_ON_TEST} : 1;
our $RepeatEach           = 1;
our $NoLongString;
our $ConfigPreamble       = '';
our $FirstTime            = 1;
our @EnvToNginx;
our @BlockPreprocessors;
our @CleanupHandlers;

if (defined $WorkerUser && $WorkerUser !~ /^\w+(?:\s+\w+)?$/) {
    die "Bad value in the env TEST_NGINX_WORKER_USER: $WorkerUser\n";
}

# Hooks filled in by Test::Nginx::Socket.
our $RunTestHelper;
our $CheckErrorLog;
our $CheckShutdownErrorLog;

our $NginxVersion;
our $NginxRawVersion;
our $NginxV;            # cached "nginx -V" output
our $PrevConfig;
our $PrevBlock;
our $ConfigVersion;     # HUP mode: served at Host: Test-Nginx, GET /ver
our $ErrLogFilePos = 0;

# TEST_NGINX_RANDOMIZE: a free port and t/servroot_PORT per test file (for
# prove -jN); that server root is removed at the end.
our $Randomize = $ENV{TEST_NGINX_RANDOMIZE};
if ($Randomize) {
    $ServerPort = gen_rand_port({})
        // die "Cannot find an available listening port number.\n";
    $ServerPortForClient = $ServerPort;
}

# Server root layout (same names as upstream).
our $ServRoot = $Randomize
    ? File::Spec->rel2abs("t/servroot_$ServerPort")
    : ($ENV{TEST_NGINX_SERVROOT} || File::Spec->rel2abs('t/servroot'));
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir     = File::Spec->catfile($ServRoot, 'logs');
our $ErrLogFile = File::Spec->catfile($LogDir, 'error.log');
our $AccLogFile = File::Spec->catfile($LogDir, 'access.log');
our $HtmlDir    = File::Spec->catfile($ServRoot, 'html');
our $ConfDir    = File::Spec->catfile($ServRoot, 'conf');
our $ConfFile   = File::Spec->catfile($ConfDir, 'nginx.conf');
our $PidFile    = File::Spec->catfile($LogDir, 'nginx.pid');
our $CacheDir   = File::Spec->catfile($ServRoot, 'cache');

# Upper bounds for the waits this runner adds (seconds).
our $StartTimeout  = 20;    # the nginx command itself (bind retries ~2.5 s)
our $ReadyTimeout  = 5;     # pid file + listening socket after the start
our $ReloadTimeout = 10;    # HUP: new configuration answering /ver

# Make Ctrl-C and kill(1) run the END block, so nginx is stopped.
for my $sig (qw(INT TERM)) {
    if (!defined $SIG{$sig} || $SIG{$sig} eq '' || $SIG{$sig} eq 'DEFAULT') {
        $SIG{$sig} = sub { exit 128 + ($sig eq 'INT' ? 2 : 15) };
    }
}

# ---------------------------------------------------------------------------
# Setters and getters exported to the test files
# ---------------------------------------------------------------------------

sub no_long_string ()      { $NoLongString = 1 }
sub no_shuffle ()          { $NoShuffle = 1 }
sub no_root_location ()    { $NoRootLocation = 1 }
sub no_nginx_manager ()    { $NoNginxManager = 1 }
sub use_hup ()             { $UseHup = 1 }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub master_on ()           { $MasterProcessEnabled = 'on' }
sub master_off ()          { $MasterProcessEnabled = 'off' }
sub config_preamble ($)    { $ConfigPreamble = shift }
sub html_dir ()            { $HtmlDir }
sub server_root ()         { $ServRoot }
sub sleep_time             { $TestNginxSleep }
sub verbose                { $Verbose }

sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler ($)    { unshift @CleanupHandlers, shift }

# Each accessor sets its value when given one and returns it otherwise.
sub server_addr (@)     { @_ ? ($ServerAddr = shift) : $ServerAddr }
sub server_name (@)     { @_ ? ($ServerName = shift) : $ServerName }
sub timeout (@)         { @_ ? ($Timeout = shift) : $Timeout }
sub server_port (@)     { @_ ? ($ServerPort = shift) : $ServerPort }
sub workers (@)         { @_ ? ($Workers = shift) : $Workers }
sub log_level (@)       { @_ ? ($LogLevel = shift) : $LogLevel }
sub worker_connections (@) {
    @_ ? ($WorkerConnections = shift) : $WorkerConnections;
}
sub server_port_for_client (@) {
    @_ ? ($ServerPortForClient = shift) : $ServerPortForClient;
}

sub repeat_each (@) {
    $RepeatEach = shift if @_;
    return $RepeatEach;
}

sub master_process_enabled (@) {
    if (@_) {
        $MasterProcessEnabled = shift() ? 'on' : 'off';
    } else {
        return $MasterProcessEnabled;
    }
}

sub env_to_nginx (@) {
    croak "env_to_nginx: no arguments specified" if !@_;
    for my $v (@_) {
        if ($v !~ /^[A-Za-z_]/ || $v =~ /\n/) {
            croak "env_to_nginx: bad argument value: $v\n";
        }
        push @EnvToNginx, $v;
    }
}

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }
    return Test::More::is($got, $expected, $desc) if $NoLongString;
    return is_string($got, $expected, $desc);
}

# "50ms" -> 0.05, "2s" -> 2, "1.5" -> 1.5
sub parse_time ($) {
    my $tm = shift;
    if (defined $tm) {
        if ($tm =~ s/([^_a-zA-Z])ms$/$1/) {
            $tm = $tm / 1000;
        } else {
            $tm =~ s/([^_a-zA-Z])s$/$1/;
        }
    }
    return $tm;
}

sub trim ($) {
    my $s = shift;
    return undef if !defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /gs;
    $s =~ s/\s{2,}/ /gs;
    return $s;
}

sub show_all_chars ($) {
    my $s = shift;
    $s =~ s/\n/\\n/gs;
    $s =~ s/\r/\\r/gs;
    $s =~ s/\t/\\t/gs;
    return $s;
}

# "Name: value" lines -> { Name => value }; "!Name" -> { Name => undef }
# (meaning "must be absent").  A line without a colon also maps to undef,
# exactly as upstream.
sub parse_headers ($) {
    my $s = shift;
    my %headers;
    for my $line (split /\n/, $s) {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        my $neg = ($line =~ s/^!\s*//);
        if ($neg) {
            $headers{$line} = undef;
        } else {
            my ($key, $val) = split /\s*:\s*/, $line, 2;
            $headers{$key} = $val;
        }
    }
    return \%headers;
}

sub get_canon_version (@) {
    sprintf "%d.%03d%03d", $_[0], $_[1], $_[2];
}

sub nginx_V () {
    return $NginxV if defined $NginxV;
    my $out = `"$NginxBinary" -V 2>&1`;
    if (!defined $out || $? != 0) {
        $out //= '';
        bail_out("Failed to get the version of the Nginx in PATH: $out");
    }
    return $NginxV = $out;
}

sub get_nginx_version () {
    my $out = nginx_V();
    if ($out =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}s
        || $out =~ m{\w+/(\d+)\.(\d+)\.(\d+)}s)
    {
        $NginxRawVersion = "$1.$2.$3";
        return get_canon_version($1, $2, $3);
    }
    bail_out("Failed to parse the output of \"nginx -V\": $out\n");
}

sub can_run ($) {
    my $cmd = shift;
    if ($cmd =~ m{/}) {
        return (-f $cmd && -x $cmd) ? $cmd : undef;
    }
    for my $dir (split /:/, $ENV{PATH} // '') {
        next if $dir eq '';
        my $abs = File::Spec->catfile($dir, $cmd);
        return $abs if -f $abs && -x $abs;
    }
    return undef;
}

# $TEST_NGINX_FOO in configuration text -> $ENV{TEST_NGINX_FOO}; an unset
# variable aborts the run, naming it.  $TEST_NGINX_RAND_PORT_N picks a free
# port (one per name and block).
our $WarnedHtmlDir;
sub expand_env_in_text ($$$) {
    my ($text, $name, $rand_ports) = @_;
    return undef if !defined $text;
    $rand_ports //= {};

    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        my $value;
        if ($var =~ /^TEST_NGINX_RAND_PORT_[0-9]+$/) {
            $value = $rand_ports->{$var} //= gen_rand_port($rand_ports)
                // bail_out("$name - Cannot find an available listening "
                            . "port number for $var.\n");
        } elsif (defined $ENV{$var}) {
            $value = $ENV{$var};
        } elsif ($var eq 'TEST_NGINX_HTML_DIR') {
            # Upstream Test::Nginx::Socket does not set this one; suites
            # must do $ENV{TEST_NGINX_HTML_DIR} ||= html_dir(); to run
            # under both.  We provide it but say so once.
            if (!$WarnedHtmlDir++) {
                Test::More::diag("WARNING: \$TEST_NGINX_HTML_DIR is not set;"
                    . " upstream Test::Nginx would bail out here. Add"
                    . " \$ENV{TEST_NGINX_HTML_DIR} ||= html_dir(); to the"
                    . " preamble.");
            }
            $value = $HtmlDir;
        } else {
            bail_out("$name - No environment $var defined.\n");
        }
        $value;
    }ge;

    return $text;
}

sub gen_rand_port {
    my $taken = shift;
    my %used = ($ServerPort => 1, map { $_ => 1 } grep { defined } values %$taken);
    for (1 .. 1000) {
        my $port = int(rand 63550) + 1985;
        next if $used{$port};
        my $sock = IO::Socket::INET->new(
            LocalAddr => $ServerAddr, LocalPort => $port, Proto => 'tcp',
        );
        if ($sock) {
            $sock->close;
            return $port;
        }
    }
    return undef;
}

sub gen_rand_str ($) {
    my $len = shift;
    my @chars = ('A' .. 'Z', 'a' .. 'z', '0' .. '9');
    return join '', map { $chars[int rand @chars] } 1 .. $len;
}

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

# ---------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------

# The error.log lines written since the previous call in this block (or
# all of them under check_accum_error_log()).
sub error_log_data () {
    # lines from the log phase are written after the connection closed
    sleep $TestNginxSleep * 3;

    open my $in, '<', $ErrLogFile or return undef;
    if (!$CheckAccumErrLog && $ErrLogFilePos > 0) {
        seek $in, $ErrLogFilePos, 0;
    }
    my @lines = <$in>;
    $ErrLogFilePos = tell($in) if !$CheckAccumErrLog;
    close $in;
    return \@lines;
}

sub access_log_data () {
    sleep $TestNginxSleep * 3;
    open my $in, '<', $AccLogFile or die "open $AccLogFile failed: $!";
    my @lines = <$in>;
    close $in;
    return \@lines;
}

sub tail_error_log ($) {
    my $n = shift;
    open my $in, '<', $ErrLogFile or return '';
    my @lines = <$in>;
    close $in;
    splice @lines, 0, @lines - $n if @lines > $n;
    return join '', @lines;
}

# ---------------------------------------------------------------------------
# Server root, user files, nginx.conf
# ---------------------------------------------------------------------------

sub setup_server_root ($) {
    my $first_time = shift;

    if (-d $ServRoot) {
        # Remove only what the runner creates, so a mistaken
        # TEST_NGINX_SERVROOT never loses real data (rmdir fails instead).
        remove_tree($ConfDir, glob("$ServRoot/*_cache"),
                    glob("$ServRoot/*_temp"));

        if ($UseHup) {
            # nginx keeps running: delete the files (the error log is
            # reopened with USR1 before the HUP) but keep the pid file.
            find({ bydepth => 1, no_chdir => 1, wanted => sub {
                return if -d $_;
                return if !$first_time
                          && /(?:\bnginx\.pid|\.sock|\.crt|\.key)$/;
                unlink $_ or warn "Failed to remove $_: $!\n";
            } }, $ServRoot);

        } else {
            remove_tree($CacheDir, $HtmlDir, $LogDir);
            rmdir $ServRoot
                or bail_out("Can't remove $ServRoot (not empty?): $!");
        }
    }

    for my $dir ($ServRoot, $LogDir, $HtmlDir) {
        next if -d $dir;
        mkdir $dir or bail_out("Failed to do mkdir $dir\n");
    }

    my $index_file = "$HtmlDir/index.html";
    open my $out, '>', $index_file
        or bail_out("Can't open $index_file for writing: $!\n");
    print $out '<html><head><title>It works!</title></head>'
               . '<body>It works!</body></html>';
    close $out;

    mkdir $ConfDir or bail_out("Failed to do mkdir $ConfDir\n");
}

# --- user_files: ">>> name [touch -t date]" followed by the content,
# relative names land in SERVROOT/html; or an eval'ed array of
# [name, content, date].
sub write_user_files ($$) {
    my ($block, $rand_ports) = @_;
    my $name = $block->name;
    my $files = $block->user_files;
    return if !$files;

    if (!ref $files) {
        my @list;
        my ($fname, $body, $date);
        for my $line (split /^/, $files) {
            if ($line =~ />>> (\S+)(?:\s+(.+))?/) {
                push @list, [$fname, $body, $date] if $fname;
                ($fname, $date, $body) = ($1, $2, undef);
            } else {
                $body .= $line;
            }
        }
        push @list, [$fname, $body, $date] if $fname;
        $files = \@list;

    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - wrong value type: ", ref $files,
                 ", only scalar or ARRAY are accepted");
    }

    for my $file (@$files) {
        my ($fname, $body, $date) = @$file;
        $body //= '';
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";

        if ($path =~ m{(.*)/}) {
            my $dir = $1;
            if (!-d $dir) {
                make_path($dir)
                    or bail_out("$name - Cannot create directory ", $dir);
            }
        }

        $body = expand_env_in_text($body, $name, $rand_ports);

        open my $out, '>', $path
            or bail_out("$name - Cannot open $path for writing: $!\n");
        binmode $out;
        print $out $body;
        close $out;

        if ($date) {
            local $ENV{TZ} = 'GMT';
            system('touch', '-t', $date, $path) == 0
                or bail_out("Failed to run shell command: touch -t $date "
                            . "$path\n");
        }
    }
}

sub write_config_file ($$$) {
    my ($block, $config, $rand_ports) = @_;
    my $name = $block->name;

    master_on() if $UseHup;     # reloads need a master process

    my $http_config = expand_env_in_text($block->http_config, $name,
                                         $rand_ports) // '';
    $config //= '';

    my $extra_http_config = '';
    if (defined $PostponeOutput && $http_config !~ /\bpostpone_output\b/) {
        bail_out("Bad TEST_NGINX_POSTPONE_OUTPUT value: $PostponeOutput\n")
            if $PostponeOutput !~ /^\d+$/;
        $extra_http_config = "\n    postpone_output $PostponeOutput;\n";
    }

    my $main_config = $block->main_config // '';
    if ($LoadModules) {
        my @modules = map { "load_module $_;" } grep { $_ }
                      split /\s+/, $LoadModules;
        $main_config = join ' ', @modules, $main_config if @modules;
    }
    $main_config = expand_env_in_text($main_config, $name, $rand_ports);

    my $post_main_config = expand_env_in_text($block->post_main_config,
                                              $name, $rand_ports) // '';

    my $err_log_file = $block->error_log_file || $ErrLogFile;
    $err_log_file = expand_env_in_text($err_log_file, $name, $rand_ports);

    my $server_name = $block->server_name // $ServerName;

    # Keep every temporary directory inside the server root, unless the
    # block configures it itself or the module is not compiled in.
    my $V = nginx_V();
    my @temp;
    for my $t (qw(client_body proxy fastcgi scgi uwsgi)) {
        next if $V =~ /--without-http_${t}_module/;
        next if $http_config =~ /\b${t}_temp_path\b/;
        push @temp, "${t}_temp_path $ServRoot/${t}_temp;";
    }
    my $temp_paths = join ' ', @temp;

    my $env = '';
    for my $v (@EnvToNginx) {
        my $quoted = $v =~ /\s/ ? "'$v'" : $v;
        $env .= "env $quoted;\n";
    }

    my $root_location = $NoRootLocation ? '' : <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    my $ver_server = !$UseHup ? '' : <<"_EOC_";
    server {
        listen          $ServerPort;
        server_name     'Test-Nginx';

        location = /ver {
            return 200 '$ConfigVersion';
        }
    }

$extra_http_config
_EOC_

    my $event_type = $EventType ? "    use $EventType;\n" : '';

    my $user = '';
    if (defined $WorkerUser) {
        $user = "user $WorkerUser;\n";
    } elsif ($> == 0) {
        $user = "user root;\n";      # workers must read the server root
    }

    open my $out, '>', $ConfFile
        or bail_out("Can't open $ConfFile for writing: $!\n");

    print $out <<"_EOC_";
worker_processes  $Workers;
daemon $DaemonEnabled;
master_process $MasterProcessEnabled;
error_log $err_log_file $LogLevel;
pid       $PidFile;
env MOCKEAGAIN_VERBOSE;
env MOCKEAGAIN;
env MOCKEAGAIN_WRITE_TIMEOUT_PATTERN;
env LD_PRELOAD;
env LD_LIBRARY_PATH;
env DYLD_INSERT_LIBRARIES;
env DYLD_FORCE_FLAT_NAMESPACE;
$env#env LUA_PATH;
#env LUA_CPATH;

$main_config

http {
    access_log $AccLogFile; $temp_paths
    #access_log off;

    default_type text/plain;
    keepalive_timeout  68000ms;

$http_config
    server {
        listen          $ServerPort;
        #placeholder
        server_name     '$server_name';

        client_max_body_size 30M;
        #client_body_buffer_size 4k;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
$ver_server}

$post_main_config

#timer_resolution 100ms;

events {
    accept_mutex off;

    worker_connections  $WorkerConnections;
$event_type}
env ASAN_OPTIONS;
env MOCKNOEAGAIN_VERBOSE;
env MOCKNOEAGAIN;
$user
_EOC_

    close $out;
}

# ---------------------------------------------------------------------------
# nginx processes
# ---------------------------------------------------------------------------

# True when $pid exists and is not a zombie waiting to be reaped.
sub is_running ($) {
    my $pid = shift;
    return 0 if !$pid || !kill(0, $pid);
    if (open my $fh, '<', "/proc/$pid/stat") {
        my $stat = <$fh> // '';
        return 0 if $stat =~ /^\d+ \(.*\) [ZX] /s;
    }
    return 1;
}

# Guards against a stale pid file whose pid now belongs to something else.
sub looks_like_nginx ($) {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/cmdline" or return 1;   # no /proc: trust
    my $cmd = do { local $/; <$fh> } // '';
    (my $base = $NginxBinary) =~ s{.*/}{};
    return $cmd =~ /nginx/ || index($cmd, $base) >= 0;
}

sub get_pid_from_pidfile ($) {
    my $name = shift;
    open my $in, '<', $PidFile
        or bail_out("$name - Failed to open the pid file $PidFile for "
                    . "reading: $!");
    my $pid = do { local $/; <$in> } // '';
    close $in;
    chomp $pid;
    return $pid;
}

# The pid of the nginx recorded in our pid file if it is still alive.
sub running_nginx_pid () {
    return undef if !-f $PidFile;
    open my $in, '<', $PidFile or return undef;
    my $pid = <$in> // '';
    close $in;
    return undef if $pid !~ /^\s*(\d+)\s*$/;
    $pid = $1;
    return (is_running($pid) && looks_like_nginx($pid)) ? $pid : undef;
}

sub wait_gone ($$) {
    my ($pid, $secs) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        return 1 if !is_running($pid);
        sleep 0.02;
    }
    return !is_running($pid);
}

# QUIT (graceful), then TERM, then KILL of the whole process group; every
# step is bounded.
sub stop_nginx ($$) {
    my ($pid, $name) = @_;
    return if !$pid;

    kill 'QUIT', $pid;
    if (!wait_gone($pid, timeout())) {
        warn "$name - timeout when waiting for the process $pid to exit\n";
        kill 'TERM', $pid;
        if (!wait_gone($pid, 1)) {
            warn "$name - WARNING: killing the nginx process $pid "
                 . "with force...\n";
            my $pgrp = getpgrp($pid);
            kill 'KILL', (defined $pgrp && $pgrp == $pid) ? -$pid : $pid;
            wait_gone($pid, 1);
        }
    }
    unlink $PidFile if -f $PidFile && !is_running($pid);
}

# Is something listening on TCP $port?  Read from /proc so that no probe
# connection shows up in error.log; without /proc, assume yes.
sub port_is_listening ($) {
    my $port = shift;
    my $hex = sprintf '%04X', $port;
    my $seen_proc;
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $in, '<', $f or next;
        $seen_proc = 1;
        while (<$in>) {
            # sl local_address rem_address st ...; st 0A = LISTEN
            return 1 if /^\s*\d+:\s+[0-9A-F]+:$hex\s+[0-9A-F]+:[0-9A-F]+\s+0A\s/;
        }
    }
    return !$seen_proc;
}

# Runs the nginx start command once, bounded.  Returns (exit status or
# undef on timeout, stderr text, command line).
sub run_nginx_command () {
    my @cmd = ($NginxBinary);
    # -e (nginx >= 1.19.5) sends the early error log (config errors) to
    # our error.log instead of the compiled-in path, as upstream does.
    push @cmd, '-e', $ErrLogFile if $NginxVersion && $NginxVersion >= 1.019005;
    push @cmd, '-p', "$ServRoot/", '-c', $ConfFile;

    # stderr goes to a file, not a pipe: the daemon inherits the
    # descriptor and would keep a pipe open.
    my $errfh = File::Temp->new(TMPDIR => 1);
    my $pid = fork;
    bail_out("fork() failed: $!") if !defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>&', $errfh;
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }

    my $status;
    my $deadline = time + $StartTimeout;
    while (1) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) {
            $status = $?;
            last;
        }
        if ($r == -1) {
            $status = -1;
            last;
        }
        if (time > $deadline) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            last;
        }
        sleep 0.005;
    }

    seek $errfh, 0, 0;
    my $stderr = do { local $/; <$errfh> } // '';
    return ($status, $stderr, join ' ', @cmd);
}

# After a successful start: wait for the daemon's pid file and for the
# listening socket.  Returns the pid or undef.
sub wait_for_nginx () {
    my $deadline = time + $ReadyTimeout;
    while (time < $deadline) {
        my $pid = running_nginx_pid();
        return $pid if $pid && port_is_listening($ServerPort);
        sleep 0.005;
    }
    return undef;
}

# nginx's own complaint: the [emerg]/[alert]/[crit] lines of its stderr,
# else of error.log, else the last lines of either.
sub nginx_errors ($) {
    my $stderr = shift // '';
    my @lines = grep { /\[(?:emerg|alert|crit)\]/ } split /\n/, $stderr;
    if (!@lines) {
        @lines = grep { /\[(?:emerg|alert|crit)\]/ }
                 split /\n/, tail_error_log(50);
    }
    @lines = split /\n/, ($stderr ne '' ? $stderr : tail_error_log(10))
        if !@lines;
    return join "\n", @lines;
}

# GET /ver with Host: Test-Nginx over a fresh connection; the body or undef.
sub fetch_config_version () {
    my $sock = IO::Socket::INET->new(
        PeerAddr => $ServerAddr, PeerPort => $ServerPort, Proto => 'tcp',
        Timeout => 1,
    ) or return undef;
    local $SIG{PIPE} = 'IGNORE';
    print $sock "GET /ver HTTP/1.0\r\nHost: Test-Nginx\r\n\r\n";
    my $sel = IO::Select->new($sock);
    my $resp = '';
    while ($sel->can_read(1)) {
        my $n = sysread $sock, my $buf, 4096;
        last if !$n;
        $resp .= $buf;
    }
    close $sock;
    return $resp =~ m{\AHTTP/\S+ 200 .*?\r\n\r\n(.*)\z}s ? $1 : undef;
}

# The processes a master started (its workers and cache helpers).
sub child_pids ($) {
    my $ppid = shift;
    my @kids;
    opendir my $dir, '/proc' or return ();
    for my $p (grep { /^\d+$/ } readdir $dir) {
        open my $fh, '<', "/proc/$p/stat" or next;
        my $stat = <$fh> // next;
        push @kids, $p if $stat =~ /\) \S+ (\d+) / && $1 == $ppid;
    }
    closedir $dir;
    return @kids;
}

# True once a worker has exited or set its "shutting down" title, which
# it does just before it closes its listening sockets.
sub shutting_down ($) {
    my $p = shift;
    open my $fh, '<', "/proc/$p/cmdline" or return 1;
    my $title = do { local $/; <$fh> } // '';
    return $title eq '' || $title =~ /shutting down/;
}

# HUP mode: reopen logs (USR1), reload (HUP) and wait until the new
# configuration answers (20 answers in a row) and every worker of the old
# one has stopped accepting: on a busy machine an old worker can be slow
# to take its signal and still accept a connection after the new workers
# answered.  A reload refused by nginx fails at once with its [emerg] text.
sub reload_nginx ($$$) {
    my ($pid, $block, $name) = @_;
    my @old = child_pids($pid);

    kill('USR1', $pid) or return 0;
    sleep $TestNginxSleep;
    kill('HUP', $pid) or return 0;
    sleep $TestNginxSleep * 3;

    if (defined $block->reload_fails) {
        sleep 0.3;
        return 1;
    }

    my $deadline = time + $ReloadTimeout;
    my ($nsucc, $tries) = (0, 0);
    while (time < $deadline) {
        $tries++;
        my $ver = fetch_config_version();
        if (defined $ver && $ver eq $ConfigVersion) {
            $nsucc++;
            sleep $TestNginxSleep if $nsucc == 5;
            next if $nsucc < 20;
            while (grep { !shutting_down($_) } @old) {
                if (time >= $deadline) {
                    Test::More::fail("$name - the old workers ("
                                     . join(' ', @old) . ") still run "
                                     . "without shutting down after the "
                                     . "reload");
                    return 1;
                }
                sleep 0.02;
            }
            sleep 0.02;     # from the title to closing the sockets
            return 1;
        }
        $nsucc = 0;

        # the whole log of this reload: an nginx built with
        # NGX_DEBUG_PALLOC logs every allocation after the [emerg] line
        my @emerg = grep { /\[emerg\]/ } split /\n/,
                    tail_error_log(1_000_000);
        if (@emerg) {
            Test::More::fail("$name - failed to reload configuration: "
                             . join("\n", @emerg));
            return 1;
        }
        sleep 0.02;
    }

    Test::More::fail("$name - failed to reload configuration after "
                     . "$tries failed test requests");
    return 1;
}

# ---------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------

sub check_prev_block_shutdown_error_log () {
    my $block = $PrevBlock;
    return if !defined $block;
    return if !defined($block->shutdown_error_log)
              && !defined($block->no_shutdown_error_log);

    # nginx did not exit in HUP mode: the checks are reported as skipped
    my $dry_run = ($UseHup || $ENV{TEST_NGINX_NO_CLEAN}) ? 1 : undef;
    $CheckShutdownErrorLog->($block, $dry_run);
}

sub run_tests () {
    srand($$ + time() * 1000000);
    $NginxVersion = get_nginx_version();

    $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort
        if !defined $ENV{TEST_NGINX_SERVER_PORT};

    if ($ENV{TEST_NGINX_USE_HTTP2} || $ENV{TEST_NGINX_USE_HTTP3}) {
        Test::More::diag("WARNING: TEST_NGINX_USE_HTTP2/3 is not supported "
                         . "by the compat runner; using HTTP/1.1");
    }

    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks if !$NoShuffle;

    for my $block (@blocks) {
        $_->($block) for @BlockPreprocessors;
        $block->set_value('name', $0 . ' ' . $block->name);
        run_test($block);
        $PrevBlock = $block;
    }

    cleanup();
}

# Parses --- skip_eval / --- skip_nginx / --- todo; returns
# ($skip, $todo, $count, $reason).
sub skip_or_todo ($) {
    my $block = shift;
    my $name = $block->name;
    my ($skip, $todo, $count, $reason);

    if (defined(my $spec = $block->skip_eval)) {
        $spec =~ /^\s*(\d+)\s*:\s*(.*)/s
            or bail_out("$name - Invalid --- skip_eval spec: $spec");
        ($count, $reason) = ($1, 'skip_eval');
        my $code = $2;
        $skip = eval $code;
        bail_out("$name - skip_eval - failed to eval the Perl code "
                 . "\"$code\": $@") if $@;
    }

    if (defined(my $spec = $block->skip_nginx)) {
        $spec =~ m{^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)
                   (?:\s*:\s*(.*))?\s*$}x
            or bail_out("$name - Invalid --- skip_nginx spec: $spec");
        $count = $1;
        my ($op, $ver) = ($2, get_canon_version($3, $4, $5));
        $reason = $6 || "nginx version $op $3.$4.$5";
        $skip = 1 if eval "$NginxVersion $op $ver";
    }

    if (defined(my $spec = $block->todo)) {
        $spec =~ /^\s*(\d+)\s*:\s*(.*)/s
            or bail_out("$name - Invalid --- todo spec: $spec");
        ($todo, $count, $reason) = (1, $1, $2);
    }

    for my $s (qw(tcp_listen udp_listen stap http2 http3)) {
        if (defined $block->$s) {
            bail_out("$name - --- $s is not supported by the compat "
                     . "runner (t/compat/README.md)");
        }
    }

    return ($skip, $todo, $count, $reason // 'various reasons');
}

sub run_test ($) {
    my $block = shift;
    return if defined $block->SKIP;

    my $name = $block->name;
    my $first_time = $FirstTime;
    undef $FirstTime;

    my $rand_ports = {};
    my $config = expand_env_in_text($block->config, $name, $rand_ports);

    local $LogLevel = $block->log_level || $LogLevel;
    local $UseHup = $UseHup;
    my $must_die = $block->must_die;
    undef $UseHup if defined $must_die;     # nothing to reload into

    # Without --- config the block reuses the running nginx (upstream's
    # "nginx manager"); with one, nginx restarts (or reloads).
    my ($should_restart, $should_reconfig) = (1, 1);
    if (!defined $config) {
        if (!$NoNginxManager && !defined $PrevConfig) {
            bail_out("$name - No '--- config' section specified and could "
                     . "not get previous one. Use TEST_NGINX_NO_NGINX_MANAGER ?");
        }
        ($should_restart, $should_reconfig) = (0, 0);
    } elsif ($NoNginxManager) {
        Test::More::diag("NO_NGINX_MANAGER activated: config for $name "
                         . "ignored");
        ($should_restart, $should_reconfig) = (0, 0);
    } else {
        $should_reconfig = (!defined $PrevConfig || $config ne $PrevConfig);
        $should_restart = $should_reconfig || $ForceRestartOnTest;
    }

    my ($should_skip, $should_todo, $tests_to_skip, $reason)
        = skip_or_todo($block);
    my $dry_run = 0;

    if (!$NoNginxManager && !$should_skip && $should_restart) {
        $ConfigVersion = gen_rand_str(10) if $UseHup;
        $PrevConfig = $config if $should_reconfig;

        my $pid = running_nginx_pid();
        if ($pid) {
            if ($UseHup && !$first_time) {
                setup_server_root(0);
                write_user_files($block, $rand_ports);
                write_config_file($block, $config, $rand_ports);
                if (reload_nginx($pid, $block, $name)) {
                    check_prev_block_shutdown_error_log();
                    goto REQUEST;
                }
            }
            stop_nginx($pid, $name);
        } elsif (-f $PidFile) {
            unlink $PidFile;
        }

        check_prev_block_shutdown_error_log();

        setup_server_root($first_time);
        write_user_files($block, $rand_ports);
        write_config_file($block, $config, $rand_ports);

        can_run($NginxBinary)
            or bail_out("$name - Cannot find the nginx executable "
                        . "\"$NginxBinary\" (set TEST_NGINX_BINARY)");

        $ErrLogFilePos = 0;
        my $i = 0;
        while (1) {
            my ($status, $stderr, $cmd) = run_nginx_command();

            if (defined $must_die) {
                if (!defined $status) {
                    Test::More::fail("$name - nginx did not return within "
                                     . "$StartTimeout s");
                } elsif ($status == -1 || $status == 127 << 8) {
                    Test::More::fail("$name - failed to execute the nginx "
                                     . "command line");
                } elsif ($status & 128) {
                    Test::More::fail("$name - nginx core dumped");
                } elsif (looks_like_number($must_die)) {
                    Test::More::is($must_die, $status >> 8,
                                   "$name - die with the expected exit code");
                } else {
                    Test::More::isnt($status, 0, "$name - die as expected");
                }

                $CheckErrorLog->($block, undef, $dry_run, $i, 0);

                if (defined $status && $status == 0) {
                    warn "WARNING: $name - nginx must die but it does not; "
                         . "killing it (req $i)\n";
                    stop_nginx(wait_for_nginx(), $name);
                }
                next if ++$i < $RepeatEach;
                return;
            }

            if (defined $status && $status == 0) {
                last if wait_for_nginx();
                $stderr .= "\nnginx did not write its pid file or listen "
                           . "on port $ServerPort within $ReadyTimeout s";
            }

            my $errors = nginx_errors($stderr);
            if ($ENV{TEST_NGINX_IGNORE_MISSING_DIRECTIVES}
                && $errors =~ /\[emerg\] .*?unknown directive "([^"]+)"/)
            {
                $dry_run = "the lack of directive $1";
                last;
            }

            # Upstream retries for 30 s and then bails out; report it now,
            # as one failing test carrying nginx's own words.
            Test::More::fail("$name - failed to start nginx: "
                . (defined $status ? "exit status " . ($status >> 8)
                                   : "timed out")
                . "\n$errors");
            Test::More::diag("command: $cmd");
            return;
        }

        sleep $TestNginxSleep;
    }

  REQUEST:

    if (my $init = $block->init) {
        eval $init;
        bail_out("$name - init failed: $@") if $@;
    }

    $ErrLogFilePos = 0;
    for my $i (1 .. $RepeatEach) {
        write_user_files($block, $rand_ports) if $i > 1;

        if ($should_skip && defined $tests_to_skip) {
            SKIP: {
                Test::More::skip("$name - $reason", $tests_to_skip);
            }
        } elsif ($should_todo) {
            TODO: {
                Test::More::todo_skip("$name - $reason", $tests_to_skip);
            }
        } else {
            $RunTestHelper->($block, $dry_run, $i - 1);
        }
    }
}

sub cleanup () {
    $_->() for @CleanupHandlers;
}

END {
    # keep the exit status Test::Builder computes
    local $?;

    cleanup();

    if (!$ENV{TEST_NGINX_NO_CLEAN}) {
        my $pid = running_nginx_pid();
        stop_nginx($pid, 'END') if $pid;
    }

    check_prev_block_shutdown_error_log() if $CheckShutdownErrorLog;

    if ($Randomize && $ServRoot =~ m{/t/servroot_\d+$} && -d $ServRoot) {
        remove_tree($ServRoot);
    }
}

1;
