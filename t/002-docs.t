# docs/directives.md covers what the source defines: every directive (with
# Syntax:, Default:, Context: and an nginx example), every directive
# parameter ("name=" strings the configuration parsers look for), every
# variable, and every problem code (with its status).  And every problem
# code has its own series in apipolicy_status (not OTHER).
#
# When this fails after you added something: add it to docs/directives.md.
use strict;
use warnings;
use Test::More;

my @sources = ('ngx_http_apipolicy_module.c', sort glob('src/*.c'));
my $doc_file = 'docs/directives.md';

open my $dfh, '<', $doc_file or die "$doc_file: $!";
my $doc = do { local $/; <$dfh> };
close $dfh;

# the "### name" sections of the page, name => text up to the next heading
my %section;
while ($doc =~ /^###\s+(\S+)[^\n]*\n(.*?)(?=^#{1,3}\s|\z)/msg) {
    $section{$1} = $2;
}

my (%directives, %variables, %codes, %params, %answered, %counted);

for my $file (@sources) {
    open my $fh, '<', $file or die "$file: $!";
    my $c = do { local $/; <$fh> };
    close $fh;

    # directive tables: ngx_command_t ...[] = { ... ngx_null_command }
    while ($c =~ /ngx_command_t\s+\w+\[\]\s*=\s*\{(.*?)ngx_null_command/sg) {
        my $table = $1;
        $directives{$1} = $file
            while $table =~ /\{\s*ngx_string\("([a-z0-9_]+)"\)\s*,/g;
    }

    # variable tables: ngx_http_variable_t ...[] = { ... ngx_http_null_variable }
    while ($c =~ /ngx_http_variable_t\s+\w+\[\]\s*=\s*\{(.*?)ngx_http_null_variable/sg) {
        my $table = $1;
        while ($table =~ /\{\s*ngx_string\("([a-z0-9_]+)"\)\s*,([^}]*)/g) {
            my ($name, $rest) = ($1, $2);
            $name .= 'NAME' if $rest =~ /NGX_HTTP_VAR_PREFIX/;
            $variables{$name} = $file;
        }
        # ... or through apipolicy's macro: ngx_http_apipolicy_variable("name", get, flags)
        while ($table =~ /ngx_http_apipolicy_variable\(\s*"([a-z0-9_]+)"\s*,([^)]*)\)/g) {
            my ($name, $rest) = ($1, $2);
            $name .= 'NAME' if $rest =~ /NGX_HTTP_VAR_PREFIX/;
            $variables{$name} = $file;
        }
    }

    # problem codes: ngx_http_apipolicy_problem("CODE", ...), and the
    # codes the status page counts (OTHER included)
    while ($c =~ /ngx_http_apipolicy_problem\(\s*"([A-Z][A-Z0-9_]+)"/g) {
        $codes{$1} = $file;
        $answered{$1} = $file;
    }

    if ($c =~ /ngx_http_apipolicy_status_codes\[\]\s*=\s*\{(.*?)\};/s) {
        my $list = $1;
        while ($list =~ /status_code\(\s*"[a-z]+",\s*"([A-Z][A-Z0-9_]+)"\)/g) {
            $codes{$1} = $file;
            $counted{$1} = $file;
        }
    }

    # parameters: "name=" as the directive parsers compare them
    $params{$1} = $file while $c =~ /"([a-z][a-z0-9_]*=)"/g;
}

delete $codes{OK};    # the JWT table's "no error" entry, never answered
delete $answered{OK};

# "name=" strings that are not directive parameters: parts of headers the
# providers send (Stripe's t= and v1=, Slack's v0=, GitHub's sha256=)
delete $params{$_} for qw(t= v0= v1= sha256=);

ok(scalar keys %directives >= 30, 'directives found in the source')
    or diag(scalar keys %directives);
ok(scalar keys %variables >= 8, 'variables found in the source');
ok(scalar keys %codes >= 20, 'problem codes found in the source');
ok(scalar keys %params >= 20, 'parameters found in the source');

for my $d (sort keys %directives) {
    my $s = $section{$d};

    ok(defined $s, "$doc_file has a section \"### $d\" ($directives{$d})")
        or next;

    like($s, qr/^Syntax:\s+`\Q$d\E[ ;`]/m, "$d: Syntax: line");
    like($s, qr/^Default:\s+\S/m, "$d: Default: line");
    like($s, qr/^Context:\s+`(?:http|server|location)`/m, "$d: Context: line");
    like($s, qr/```nginx\n.*\Q$d\E/s, "$d: an nginx example using it");

    # a paragraph: some prose between the Context: line and the example
    like($s, qr/^Context:[^\n]*\n\n[A-Z`\$(].{30,}?```nginx/sm,
         "$d: a paragraph");
}

for my $v (sort keys %variables) {
    ok(defined $section{"\$$v"},
       "$doc_file has a section \"### \$$v\" ($variables{$v})");
}

for my $code (sort keys %codes) {
    ok($doc =~ /^\|\s*`\Q$code\E`\s*\|\s*(?:\d{3}|—)[^|]*\|\s*\S/m,
       "$doc_file lists $code with its status and when ($codes{$code})");
}

# every code the gateway answers with has its own apipolicy_status series
# (else it is counted under OTHER)
ok(exists $counted{OTHER}, 'the status code table is found, OTHER included');

for my $code (sort keys %answered) {
    ok(exists $counted{$code},
       "$code ($answered{$code}) is in the code table of "
       . "src/ngx_http_apipolicy_status.c");
}

for my $p (sort keys %params) {
    ok($doc =~ /`[^`\n]*\b\Q$p\E/,
       "$doc_file names the parameter $p ($params{$p})");
}

done_testing();
