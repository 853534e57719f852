# Webhook headers that are empty, sent twice or 5,000 bytes long, for
# every scheme: each gets 401 with the precise detail, and none writes
# past the memory it was given (the ASan build, make test-asan, with
# every pool allocation its own malloc, turns such a write into a
# failed run).  The blocks are made from one table: for every scheme,
# a good delivery and then each of its headers spoilt three ways.  An
# optional delivery id (GitHub, Shopify) that cannot be read is left out
# without a replay zone; with one, it is refused like any other header
# (the upstream may act on it, and a replay check must not be guessed
# around it).
use Test::Nginx::Socket 'no_plan';
use Digest::SHA qw(hmac_sha256 hmac_sha256_hex);
use MIME::Base64 qw(encode_base64);

our $SECRET = "hooks-secret-hooks-secret-hooks!";
our $BODY = '{"type":"invoice.paid","id":"evt_1"}';
our $LONG = "a" x 5000;

sub b64 { return encode_base64(shift, '') }

# scheme => [config parameters, sub returning the good headers as
# [name, value] pairs, names of the optional headers]
our %SCHEMES = (
    standard => ["secret=whsec_" . b64($SECRET), sub {
        my $t = time;
        return (["webhook-id", "msg_1"], ["webhook-timestamp", $t],
                ["webhook-signature",
                 "v1," . b64(hmac_sha256("msg_1.$t.$BODY", $SECRET))]);
    }, []],
    stripe => ["secret=$SECRET", sub {
        my $t = time;
        return (["Stripe-Signature",
                 "t=$t,v1=" . hmac_sha256_hex("$t.$BODY", $SECRET)]);
    }, []],
    github => ["secret=$SECRET", sub {
        return (["X-Hub-Signature-256",
                 "sha256=" . hmac_sha256_hex($BODY, $SECRET)],
                ["X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"]);
    }, ["X-GitHub-Delivery"]],
    slack => ["secret=$SECRET", sub {
        my $t = time;
        return (["X-Slack-Request-Timestamp", $t],
                ["X-Slack-Signature",
                 "v0=" . hmac_sha256_hex("v0:$t:$BODY", $SECRET)]);
    }, []],
    shopify => ["secret=$SECRET", sub {
        return (["X-Shopify-Hmac-Sha256", b64(hmac_sha256($BODY, $SECRET))],
                ["X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"]);
    }, ["X-Shopify-Webhook-Id"]],
    hmac => ["secret=$SECRET header=X-Signature prefix=sha256= encoding=hex", sub {
        return (["X-Signature", "sha256=" . hmac_sha256_hex($BODY, $SECRET)]);
    }, []],
);

sub headers {
    return join "", map { "$_->[0]: $_->[1]\r\n" } @_;
}

# the good headers with the one named spoilt: "empty", "twice", "long"
sub spoilt {
    my ($scheme, $name, $how) = @_;
    my @out;
    for my $h ($SCHEMES{$scheme}[1]->()) {
        if ($h->[0] ne $name) {
            push @out, $h;
        } elsif ($how eq 'empty') {
            push @out, [$name, ""];
        } elsif ($how eq 'twice') {
            push @out, $h, $h;
        } else {
            push @out, [$name, $LONG];
        }
    }
    return headers(@out);
}

sub detail {
    my ($name, $how) = @_;
    return $how eq 'twice' ? "several $name headers were sent"
                           : "the $name header is empty or too long";
}

add_block_preprocessor(sub {
    my $block = shift;
    my $scheme = $block->name =~ /: (\w+)$/ ? $1 : return;
    my $replay = $block->name =~ /with a replay zone/;
    my ($params, $good, $optional) = @{$SCHEMES{$scheme}};
    my %opt = $replay ? () : map { $_ => 1 } @$optional;

    my (@req, @hdr, @code, @body);

    push @req, "POST /$scheme\n$BODY";
    push @hdr, headers($good->());
    push @code, 200;
    push @body, "^ok 36\n\$";

    for my $h ($good->()) {
        for my $how (qw(empty twice long)) {
            push @req, "POST /$scheme\n$BODY";
            push @hdr, spoilt($scheme, $h->[0], $how);
            if ($opt{$h->[0]}) {
                # an optional delivery id that cannot be read is left
                # out; the signature still decides
                push @code, 200;
                push @body, "^ok 36\n\$";
            } else {
                push @code, 401;
                push @body, '"detail":"' . detail($h->[0], $how)
                            . '","code":"SIGNATURE_INVALID"';
            }
        }
    }

    $params .= " replay_zone=hooks" if $replay;
    $block->set_value("http_config", "apipolicy_webhook_zone hooks:1m;")
        if $replay;
    $block->set_value("config", <<"_EOC_");
location /$scheme {
    apipolicy_webhook $scheme $params;
    proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/backend;
}
location /backend { return 200 "ok \$content_length\\n"; }
_EOC_
    $block->set_value("request", \@req);
    $block->set_value("more_headers", \@hdr);
    $block->set_value("error_code", \@code);
    $block->set_value("response_body_like", \@body);
    $block->set_value("no_error_log", "[alert]\n[crit]\nsignal");
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: spoilt headers: standard
=== TEST 2: spoilt headers: stripe
=== TEST 3: spoilt headers: github
=== TEST 4: spoilt headers: slack
=== TEST 5: spoilt headers: shopify
=== TEST 6: spoilt headers: hmac
=== TEST 7: spoilt headers with a replay zone: github
=== TEST 8: spoilt headers with a replay zone: shopify
