# Every file in conf-examples/ must pass "nginx -t" with the built module.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use File::Copy qw(copy);
use File::Find;
use File::Path qw(make_path);
use Cwd qw(abs_path);

my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
# set and empty: the binary has the module built in
my $modules = $ENV{TEST_NGINX_LOAD_MODULES}
    // abs_path('build/nginx/objs') . '/ngx_http_apipolicy_module.so';

my @examples = sort glob('conf-examples/*.conf');
ok(scalar @examples >= 3, 'conf-examples/ has examples');

for my $example (@examples) {
    (my $name = $example) =~ s{.*/}{};

    # the whole folder becomes the conf dir, so relative key paths resolve
    my $prefix = tempdir(CLEANUP => 1);
    make_path("$prefix/conf", "$prefix/logs");
    find({ no_chdir => 1, wanted => sub {
        return if -d $_;
        (my $rel = $_) =~ s{^conf-examples/?}{};
        my $dir = "$prefix/conf/$rel";
        $dir =~ s{/[^/]+$}{};
        make_path($dir);
        copy($_, "$prefix/conf/$rel") or die "copy $_: $!";
    } }, 'conf-examples');

    open my $fh, '>', "$prefix/conf/nginx.conf" or die $!;
    print $fh "load_module $_;\n" for split ' ', $modules;
    print $fh "pid logs/nginx.pid;\nerror_log logs/error.log;\n";
    print $fh "include $name;\n";
    close $fh;

    my $out = `$nginx -t -q -p $prefix/ -c conf/nginx.conf 2>&1`;
    is($? >> 8, 0, "nginx -t accepts conf-examples/$name")
        or diag($out);
}

done_testing();
