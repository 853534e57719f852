# The Docker image's layout: util/test-docker.sh replays the Dockerfile's
# runtime stage into a temporary root and runs the image's nginx -t there
# (no Docker engine or registry needed).  Its output is TAP.
use strict;
use warnings;
use Cwd qw(abs_path);

my $module = (split ' ', $ENV{TEST_NGINX_LOAD_MODULES} || '')[0]
    || abs_path('build/nginx/objs') . '/ngx_http_apipolicy_module.so';

exec 'bash', 'util/test-docker.sh', $module or die "exec: $!";
