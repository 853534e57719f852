# The bad-input catalogue: malformed requests of every kind, generated from
# the tables below, thrown at one gateway with every area on (CORS with
# refusals, the version headers, JWT, a rate limit, Idempotency-Key,
# webhooks of all six schemes with a replay zone).  Each input gets its
# precise status and problem code (or nginx's own error page, for what
# nginx refuses before any module runs), within 2 s, and the error log
# gets no [alert], [crit] or signal line.  It runs under make test-asan
# as well (README, "Security").
use lib 't/lib';
use Test::Nginx::Socket 'no_plan';
use JWTTest;
use Digest::SHA qw(hmac_sha256 hmac_sha256_hex);
use MIME::Base64 qw(encode_base64);

$ENV{TEST_NGINX_JWT_SECRET} ||= $JWTTest::SECRET;

no_shuffle();

our $KEY = 'catalogue-webhook-secret-0123456';
our $TOKEN = jwt(alg => 'HS256');
our $AUTH = "Authorization: Bearer $TOKEN\r\n";
our $NOW = time;
$ENV{TEST_NGINX_WHSEC} = 'whsec_' . encode_base64($KEY, '');
our @CASES;

sub b64 { encode_base64(shift, '') }

# one case: [area, what, raw request, status, code]; code is an apipolicy
# problem code, "" for an answer from the upstream (200 "ok"), or "nginx"
# for nginx's own error page
sub add { push @CASES, [@_] }

sub req {
    my ($method, $uri, $headers, $body) = @_;
    $body //= '';
    my $cl = ($body ne '' || $method =~ /^(POST|PUT|PATCH)$/)
             ? "Content-Length: " . length($body) . "\r\n" : '';
    return "$method $uri HTTP/1.1\r\nHost: localhost\r\n$headers$cl"
           . "Connection: close\r\n\r\n$body";
}

# ---- tokens --------------------------------------------------------------

my $h = b64u('{"alg":"HS256","typ":"JWT"}');
my $p = b64u('{"sub":"alice","exp":' . ($NOW + 3600) . '}');

sub signed {
    my ($hdr, $pay) = @_;
    my $in = b64u($hdr) . '.' . b64u($pay);
    return $in . '.' . b64u(hmac_sha256($in, $JWTTest::SECRET));
}

sub tok {
    my ($what, $value, $status, $code) = @_;
    add('token', $what, req('GET', '/api/t', "Authorization: $value\r\n"),
        $status, $code);
}

tok('no token', 'Basic YWxpY2U6c2VjcmV0', 401, 'TOKEN_MISSING');
tok('Bearer and nothing', 'Bearer', 401, 'TOKEN_MALFORMED');
tok('Bearer and spaces', 'Bearer    ', 401, 'TOKEN_MALFORMED');
tok('one segment', "Bearer $h", 401, 'TOKEN_MALFORMED');
tok('two segments', "Bearer $h.$p", 401, 'TOKEN_MALFORMED');
tok('four segments', "Bearer $h.$p.c2ln.eA", 401, 'TOKEN_MALFORMED');
tok('five segments (JWE)', "Bearer $h.$p.a.b.c", 401, 'TOKEN_MALFORMED');
tok('six segments', "Bearer $h.$p.a.b.c.d", 401, 'TOKEN_MALFORMED');
tok('dots only', 'Bearer ..', 401, 'TOKEN_MALFORMED');
tok('empty header segment', "Bearer .$p.c2ln", 401, 'TOKEN_MALFORMED');
tok('empty payload segment', "Bearer $h..c2ln", 401, 'TOKEN_MALFORMED');
tok('empty signature', "Bearer $h.$p.", 401, 'TOKEN_MALFORMED');
tok('standard base64 +', "Bearer $h+.$p.c2ln", 401, 'TOKEN_MALFORMED');
tok('standard base64 /', "Bearer $h.$p/.c2ln", 401, 'TOKEN_MALFORMED');
tok('base64 padding', "Bearer $h=.$p.c2ln", 401, 'TOKEN_MALFORMED');
tok('a space inside', "Bearer $h. $p.c2ln", 401, 'TOKEN_MALFORMED');
tok('percent-encoded', "Bearer $h%2E$p.c2ln", 401, 'TOKEN_MALFORMED');
tok('header length 1 mod 4', "Bearer ${h}A.$p.c2ln", 401, 'TOKEN_MALFORMED');
tok('signature length 1 mod 4', "Bearer $h.$p.c2lnA", 401,
    'TOKEN_MALFORMED');
tok('non-zero trailing bits', "Bearer eyJ.$p.c2ln", 401, 'TOKEN_MALFORMED');
tok('header not JSON', 'Bearer ' . b64u('alg:HS256') . ".$p.c2ln", 401,
    'TOKEN_MALFORMED');
tok('header an array', 'Bearer ' . b64u('["HS256"]') . ".$p.c2ln", 401,
    'TOKEN_MALFORMED');
tok('header a string', 'Bearer ' . b64u('"HS256"') . ".$p.c2ln", 401,
    'TOKEN_MALFORMED');
tok('header with trailing junk', 'Bearer ' . b64u('{"alg":"HS256"}x')
    . ".$p.c2ln", 401, 'TOKEN_MALFORMED');
tok('duplicate alg', 'Bearer ' . b64u('{"alg":"HS256","alg":"none"}')
    . ".$p.c2ln", 401, 'TOKEN_MALFORMED');
tok('alg none, unsigned', 'Bearer ' . b64u('{"alg":"none"}') . ".$p.", 401,
    'TOKEN_MALFORMED');
tok('alg none, signed', 'Bearer ' . b64u('{"alg":"none"}') . ".$p.c2ln",
    401, 'ALGORITHM_NOT_ALLOWED');
tok('alg NoNe', 'Bearer ' . b64u('{"alg":"NoNe"}') . ".$p.c2ln", 401,
    'ALGORITHM_NOT_ALLOWED');
tok('alg unknown', 'Bearer ' . b64u('{"alg":"HS999"}') . ".$p.c2ln", 401,
    'ALGORITHM_NOT_ALLOWED');
tok('alg a number', 'Bearer ' . b64u('{"alg":256}') . ".$p.c2ln", 401,
    'TOKEN_MALFORMED');
tok('alg missing', 'Bearer ' . b64u('{"typ":"JWT"}') . ".$p.c2ln", 401,
    'TOKEN_MALFORMED');
tok('crit listed', 'Bearer ' . b64u('{"alg":"HS256","crit":["exp"]}')
    . ".$p.c2ln", 401, 'TOKEN_MALFORMED');
tok('typ a number', 'Bearer ' . b64u('{"alg":"HS256","typ":1}')
    . ".$p.c2ln", 401, 'TOKEN_MALFORMED');
tok('typ not accepted', 'Bearer ' . b64u('{"alg":"HS256","typ":"JOSE+JSON"}')
    . ".$p.c2ln", 401, 'TOKEN_TYPE_REJECTED');
tok('kid a number', 'Bearer ' . b64u('{"alg":"HS256","kid":7}')
    . ".$p.c2ln", 401, 'TOKEN_MALFORMED');
tok('header nested 40 deep', 'Bearer ' . b64u('{"alg":"HS256","x":'
    . ('[' x 40) . (']' x 40) . '}') . ".$p.c2ln", 401, 'TOKEN_MALFORMED');
tok('wrong signature', "Bearer $h.$p." . b64u('x' x 32), 401,
    'SIGNATURE_INVALID');
tok('signature of another payload', "Bearer $h.$p."
    . (split /\./, $TOKEN)[2], 401, 'SIGNATURE_INVALID');
tok('payload not JSON', 'Bearer ' . signed('{"alg":"HS256"}', 'sub=alice'),
    401, 'TOKEN_MALFORMED');
tok('payload an array', 'Bearer ' . signed('{"alg":"HS256"}', '[1,2]'),
    401, 'TOKEN_MALFORMED');
tok('payload nested 40 deep', 'Bearer ' . signed('{"alg":"HS256"}',
    '{"a":' . ('[' x 40) . (']' x 40) . '}'), 401, 'TOKEN_MALFORMED');
tok('duplicate claims', 'Bearer ' . signed('{"alg":"HS256"}',
    '{"sub":"a","sub":"b","exp":' . ($NOW + 60) . '}'), 401,
    'TOKEN_MALFORMED');
tok('\u0000 in a claim', 'Bearer ' . signed('{"alg":"HS256"}',
    '{"sub":"a\u0000b","exp":' . ($NOW + 60) . '}'), 401, 'TOKEN_MALFORMED');
tok('lone surrogate', 'Bearer ' . signed('{"alg":"HS256"}',
    '{"sub":"\ud800","exp":' . ($NOW + 60) . '}'), 401, 'TOKEN_MALFORMED');
tok('invalid UTF-8', 'Bearer ' . signed('{"alg":"HS256"}',
    "{\"sub\":\"\xff\xfe\",\"exp\":" . ($NOW + 60) . '}'), 401,
    'TOKEN_MALFORMED');
tok('exp 1e999', 'Bearer ' . signed('{"alg":"HS256"}',
    '{"sub":"a","exp":1e999}'), 401, 'TOKEN_MALFORMED');
tok('exp a string', 'Bearer ' . signed('{"alg":"HS256"}',
    '{"sub":"a","exp":"' . ($NOW + 60) . '"}'), 401, 'TOKEN_MALFORMED');
tok('exp in the past', 'Bearer ' . signed('{"alg":"HS256"}',
    '{"sub":"a","exp":' . ($NOW - 60) . '}'), 401, 'TOKEN_EXPIRED');
tok('exp -1e300', 'Bearer ' . signed('{"alg":"HS256"}',
    '{"sub":"a","exp":-1e300}'), 401, 'TOKEN_EXPIRED');
tok('exp missing', 'Bearer ' . signed('{"alg":"HS256"}', '{"sub":"a"}'),
    401, 'CLAIM_REJECTED');
tok('nbf in the future', 'Bearer ' . signed('{"alg":"HS256"}',
    '{"sub":"a","exp":' . ($NOW + 600) . ',"nbf":' . ($NOW + 300) . '}'),
    401, 'TOKEN_NOT_YET_VALID');
tok('nbf null', 'Bearer ' . signed('{"alg":"HS256"}',
    '{"sub":"a","exp":' . ($NOW + 600) . ',"nbf":null}'), 401,
    'TOKEN_MALFORMED');
tok('token of 6,000 bytes (over apipolicy_jwt_max_size)', 'Bearer '
    . signed('{"alg":"HS256"}', '{"sub":"' . ('a' x 4400) . '","exp":'
    . ($NOW + 60) . '}'), 401, 'TOKEN_MALFORMED');
tok('token of 9,000 bytes (over the header buffers)', 'Bearer '
    . signed('{"alg":"HS256"}', '{"sub":"' . ('a' x 7000) . '","exp":'
    . ($NOW + 60) . '}'), 400, 'nginx');
tok('exp 1e300 (far future) accepted', 'Bearer ' . signed('{"alg":"HS256"}',
    '{"sub":"a","exp":1e300}'), 200, '');

add('token', 'two Authorization headers', req('GET', '/api/t',
    "Authorization: Bearer $TOKEN\r\nAuthorization: Bearer $TOKEN\r\n"),
    400, 'nginx');
add('token', 'a NUL in the header line', req('GET', '/api/t',
    "Authorization: Bearer $h\0.$p.c2ln\r\n"), 400, 'nginx');

# ---- origins -------------------------------------------------------------

sub origin {
    my ($what, $value, $status, $code) = @_;
    add('origin', $what, req('GET', '/api/o', "Origin: $value\r\n$AUTH"),
        $status, $code);
}

origin('allowed', 'https://app.example.com', 200, '');
origin('allowed wildcard', 'https://a.b.example.org', 200, '');
origin('other host', 'https://evil.example.com', 403, 'ORIGIN_NOT_ALLOWED');
origin('suffix trick', 'https://app.example.com.evil.net', 403,
       'ORIGIN_NOT_ALLOWED');
origin('prefix trick', 'https://evilapp.example.com', 403,
       'ORIGIN_NOT_ALLOWED');
origin('wildcard apex', 'https://example.org', 403, 'ORIGIN_NOT_ALLOWED');
origin('wildcard dash', 'https://evil-example.org', 403,
       'ORIGIN_NOT_ALLOWED');
origin('http, not https', 'http://app.example.com', 403,
       'ORIGIN_NOT_ALLOWED');
origin('other port', 'https://app.example.com:8443', 403,
       'ORIGIN_NOT_ALLOWED');
origin('port 0', 'https://app.example.com:0', 403, 'ORIGIN_NOT_ALLOWED');
origin('port 99999', 'https://app.example.com:99999', 403,
       'ORIGIN_NOT_ALLOWED');
origin('empty port', 'https://app.example.com:', 403, 'ORIGIN_NOT_ALLOWED');
origin('a path', 'https://app.example.com/x', 403, 'ORIGIN_NOT_ALLOWED');
origin('a trailing slash', 'https://app.example.com/', 403,
       'ORIGIN_NOT_ALLOWED');
origin('a query', 'https://app.example.com?x', 403, 'ORIGIN_NOT_ALLOWED');
origin('a fragment', 'https://app.example.com#x', 403, 'ORIGIN_NOT_ALLOWED');
origin('userinfo', 'https://user@app.example.com', 403,
       'ORIGIN_NOT_ALLOWED');
origin('two origins', 'https://app.example.com https://a.example.org', 403,
       'ORIGIN_NOT_ALLOWED');
origin('a list', 'https://app.example.com, https://a.example.org', 403,
       'ORIGIN_NOT_ALLOWED');
origin('null', 'null', 403, 'ORIGIN_NOT_ALLOWED');
origin('NULL', 'NULL', 403, 'ORIGIN_NOT_ALLOWED');
origin('scheme only', 'https://', 403, 'ORIGIN_NOT_ALLOWED');
origin('no scheme', 'app.example.com', 403, 'ORIGIN_NOT_ALLOWED');
origin('IPv6 literal', 'https://[::1]', 403, 'ORIGIN_NOT_ALLOWED');
origin('IPv6 with port', 'http://[::1]:8080', 403, 'ORIGIN_NOT_ALLOWED');
origin('IPv4', 'https://127.0.0.1', 403, 'ORIGIN_NOT_ALLOWED');
origin('unicode host', "https://\xc3\xa4pp.example.com", 403,
       'ORIGIN_NOT_ALLOWED');
origin('punycode host', 'https://xn--pp-uia.example.com', 403,
       'ORIGIN_NOT_ALLOWED');
origin('upper-case host (allowed, echoed)', 'https://APP.example.com', 200,
       '');
origin('4,000 bytes', 'https://' . ('a' x 3990) . '.com', 403,
       'ORIGIN_NOT_ALLOWED');
origin('a tab inside', "https://app.example.com\t.x", 403,
       'ORIGIN_NOT_ALLOWED');
origin('file scheme', 'file://', 403, 'ORIGIN_NOT_ALLOWED');
origin('empty', '', 403, 'ORIGIN_NOT_ALLOWED');

add('origin', 'two Origin headers', req('GET', '/api/o',
    "Origin: https://app.example.com\r\nOrigin: https://app.example.com\r\n"
    . $AUTH), 403, 'ORIGIN_NOT_ALLOWED');

# ---- preflights ----------------------------------------------------------

sub pre {
    my ($what, $headers, $status, $code) = @_;
    add('preflight', $what, req('OPTIONS', '/api/p', $headers), $status,
        $code);
}

my $O = "Origin: https://app.example.com\r\n";

pre('a good one', "${O}Access-Control-Request-Method: PUT\r\n", 204, 'empty');
pre('empty method', "${O}Access-Control-Request-Method: \r\n", 204, 'empty');
pre('method of 3,000 bytes',
    "${O}Access-Control-Request-Method: " . ('P' x 3000) . "\r\n", 204, 'empty');
pre('method list', "${O}Access-Control-Request-Method: PUT, DELETE\r\n",
    204, 'empty');
pre('method with a slash', "${O}Access-Control-Request-Method: P/T\r\n",
    204, 'empty');
pre('two methods headers', "${O}Access-Control-Request-Method: PUT\r\n"
    . "Access-Control-Request-Method: GET\r\n", 204, 'empty');
pre('headers empty', "${O}Access-Control-Request-Method: PUT\r\n"
    . "Access-Control-Request-Headers: \r\n", 204, 'empty');
pre('headers commas only', "${O}Access-Control-Request-Method: PUT\r\n"
    . "Access-Control-Request-Headers: ,,, ,\r\n", 204, 'empty');
pre('headers non-token', "${O}Access-Control-Request-Method: PUT\r\n"
    . "Access-Control-Request-Headers: x(y), \"z\", a b\r\n", 204, 'empty');
pre('headers 1,000 names', "${O}Access-Control-Request-Method: PUT\r\n"
    . "Access-Control-Request-Headers: " . join(',', ('x-a') x 1000)
    . "\r\n", 204, 'empty');
pre('headers 8,000 bytes', "${O}Access-Control-Request-Method: PUT\r\n"
    . "Access-Control-Request-Headers: " . ('x' x 7900) . "\r\n", 204, 'empty');
pre('headers with tabs', "${O}Access-Control-Request-Method: PUT\r\n"
    . "Access-Control-Request-Headers: \tcontent-type\t,\tx-b\r\n", 204, 'empty');
pre('headers unicode', "${O}Access-Control-Request-Method: PUT\r\n"
    . "Access-Control-Request-Headers: x-\xc3\xa4\r\n", 204, 'empty');
pre('two headers headers', "${O}Access-Control-Request-Method: PUT\r\n"
    . "Access-Control-Request-Headers: a\r\n"
    . "Access-Control-Request-Headers: b\r\n", 204, 'empty');
pre('private network junk', "${O}Access-Control-Request-Method: PUT\r\n"
    . "Access-Control-Request-Private-Network: yes\r\n", 204, 'empty');
pre('private network true', "${O}Access-Control-Request-Method: PUT\r\n"
    . "Access-Control-Request-Private-Network: TRUE\r\n", 204, 'empty');
pre('from a refused origin',
    "Origin: https://evil.example.com\r\nAccess-Control-Request-Method: PUT"
    . "\r\n", 403, 'ORIGIN_NOT_ALLOWED');
pre('from null', "Origin: null\r\nAccess-Control-Request-Method: PUT\r\n",
    403, 'ORIGIN_NOT_ALLOWED');
pre('without Origin', "Access-Control-Request-Method: PUT\r\n", 401,
    'TOKEN_MISSING');
pre('plain OPTIONS with Origin', $O, 401, 'TOKEN_MISSING');
pre('origin with a path', "Origin: https://app.example.com/p\r\n"
    . "Access-Control-Request-Method: PUT\r\n", 403, 'ORIGIN_NOT_ALLOWED');
add('preflight', 'with a body', req('OPTIONS', '/api/p',
    "${O}Access-Control-Request-Method: PUT\r\n", 'hello'), 204, 'empty');

# ---- idempotency keys ----------------------------------------------------

sub idem {
    my ($what, $headers, $status, $code) = @_;
    add('idempotency', $what,
        req('POST', '/api/i', $AUTH . $headers, '{"n":1}'), $status, $code);
}

idem('missing (required)', '', 400, 'IDEMPOTENCY_KEY_MISSING');
idem('empty', "Idempotency-Key: \r\n", 400, 'IDEMPOTENCY_KEY_INVALID');
idem('empty sf-string', "Idempotency-Key: \"\"\r\n", 400,
     'IDEMPOTENCY_KEY_INVALID');
idem('one quote', "Idempotency-Key: \"\r\n", 400, 'IDEMPOTENCY_KEY_INVALID');
idem('unterminated sf-string', "Idempotency-Key: \"abc\r\n", 400,
     'IDEMPOTENCY_KEY_INVALID');
idem('quote inside', "Idempotency-Key: \"a\"b\"\r\n", 400,
     'IDEMPOTENCY_KEY_INVALID');
idem('backslash', "Idempotency-Key: a\\b\r\n", 400,
     'IDEMPOTENCY_KEY_INVALID');
idem('escaped quote (RFC 8941: a"b)', "Idempotency-Key: \"a\\\"b\"\r\n",
     200, '');
idem('a space inside', "Idempotency-Key: a b\r\n", 400,
     'IDEMPOTENCY_KEY_INVALID');
idem('a tab inside', "Idempotency-Key: a\tb\r\n", 400,
     'IDEMPOTENCY_KEY_INVALID');
idem('DEL byte', "Idempotency-Key: a\x7fb\r\n", 400,
     'IDEMPOTENCY_KEY_INVALID');
idem('UTF-8', "Idempotency-Key: cl\xc3\xa9\r\n", 400,
     'IDEMPOTENCY_KEY_INVALID');
idem('256 bytes', "Idempotency-Key: " . ('k' x 256) . "\r\n", 400,
     'IDEMPOTENCY_KEY_INVALID');
idem('8,000 bytes', "Idempotency-Key: " . ('k' x 8000) . "\r\n", 400,
     'IDEMPOTENCY_KEY_INVALID');
idem('two headers', "Idempotency-Key: a\r\nIdempotency-Key: b\r\n", 400,
     'IDEMPOTENCY_KEY_INVALID');
idem('two equal headers', "Idempotency-Key: a\r\nIdempotency-Key: a\r\n",
     400, 'IDEMPOTENCY_KEY_INVALID');
idem('a list', "Idempotency-Key: a, b\r\n", 400, 'IDEMPOTENCY_KEY_INVALID');
idem('byte sequence', "Idempotency-Key: :YWJj:\r\n", 200, '');
idem('an integer', "Idempotency-Key: 12345\r\n", 200, '');
idem('255 bytes (the longest)', "Idempotency-Key: " . ('k' x 255) . "\r\n",
     200, '');
idem('sf-string with parameters (an sf item may have them)',
     "Idempotency-Key: \"k\";a=1\r\n", 200, '');
idem('leading spaces', "Idempotency-Key:    spaced-key\r\n", 200, '');

# ---- webhooks ------------------------------------------------------------

my $BODY = '{"id":"evt_1","type":"ping"}';

sub hook {
    my ($scheme, $what, $headers, $status, $code) = @_;
    add("webhook $scheme", $what, req('POST', "/hook/$scheme", $headers,
        $BODY), $status, $code);
}

my $mac = hmac_sha256_hex($BODY, $KEY);
my $ts = $NOW;
my $std = b64(hmac_sha256("msg_1.$ts.$BODY", $KEY));

for my $s (
    ['standard', 'webhook-signature', "v1,$std",
     "webhook-id: msg_1\r\nwebhook-timestamp: $ts\r\n"],
    ['stripe', 'Stripe-Signature',
     "t=$ts,v1=" . hmac_sha256_hex("$ts.$BODY", $KEY), ''],
    ['github', 'X-Hub-Signature-256', "sha256=$mac",
     "X-GitHub-Delivery: 1\r\n"],
    ['slack', 'X-Slack-Signature',
     'v0=' . hmac_sha256_hex("v0:$ts:$BODY", $KEY),
     "X-Slack-Request-Timestamp: $ts\r\n"],
    ['shopify', 'X-Shopify-Hmac-Sha256', b64(hmac_sha256($BODY, $KEY)),
     "X-Shopify-Webhook-Id: 1\r\n"],
    ['hmac', 'X-Signature', "sha256=$mac", ''],
)
{
    my ($scheme, $name, $good, $other) = @$s;

    hook($scheme, 'no signature header', $other, 401, 'SIGNATURE_MISSING');
    hook($scheme, 'empty signature', "$other$name: \r\n", 401,
         'SIGNATURE_INVALID');
    hook($scheme, 'signature twice', "$other$name: $good\r\n$name: $good\r\n",
         401, 'SIGNATURE_INVALID');
    hook($scheme, 'signature of 5,000 bytes', "$other$name: "
         . ('a' x 5000) . "\r\n", 401, 'SIGNATURE_INVALID');
    hook($scheme, 'non-hex, non-base64', "$other$name: "
         . ('z!' x 32) . "\r\n", 401, 'SIGNATURE_INVALID');
    hook($scheme, 'missing =', "$other$name: sha256"
         . ('0' x 64) . "\r\n", 401, 'SIGNATURE_INVALID');
    hook($scheme, 'one byte short', "$other$name: " . substr($good, 0, -1)
         . "\r\n", 401, 'SIGNATURE_INVALID');
    hook($scheme, '400 v1 entries', "$other$name: "
         . join(' ', ('v1,AAAA') x 400) . "\r\n", 401, 'SIGNATURE_INVALID');
    hook($scheme, '10,000 v1 entries (over the header buffers)',
         "$other$name: " . join(' ', ('v1,AAAA') x 10000) . "\r\n", 400,
         'nginx');
    hook($scheme, 'signed with another secret', "$other$name: "
         . ($good =~ tr/0-9a-f/1-9a-f0/r) . "\r\n", 401, 'SIGNATURE_INVALID');
    hook($scheme, 'the good signature', "$other$name: $good\r\n", 200, '');
}

for my $s (['standard', "webhook-id: msg_1\r\nwebhook-signature: v1,$std\r\n",
            'webhook-timestamp'],
           ['slack', "X-Slack-Signature: v0=00\r\n",
            'X-Slack-Request-Timestamp'])
{
    my ($scheme, $rest, $name) = @$s;

    hook($scheme, 'timestamp missing', $rest, 401, 'SIGNATURE_MISSING');
    hook($scheme, 'timestamp empty', "$rest$name: \r\n", 401,
         'SIGNATURE_INVALID');
    hook($scheme, 'timestamp not a number', "$rest$name: soon\r\n", 401,
         'SIGNATURE_INVALID');
    hook($scheme, 'timestamp negative', "$rest$name: -5\r\n", 401,
         'SIGNATURE_INVALID');
    hook($scheme, 'timestamp of 40 digits', "$rest$name: " . ('9' x 40)
         . "\r\n", 401, 'SIGNATURE_INVALID');
    hook($scheme, 'timestamp an hour old', "$rest$name: " . ($NOW - 3600)
         . "\r\n", 401, 'TIMESTAMP_OUT_OF_TOLERANCE');
    hook($scheme, 'timestamp twice', "$rest$name: $NOW\r\n$name: $NOW\r\n",
         401, 'SIGNATURE_INVALID');
}

hook('stripe', 'no t=', "Stripe-Signature: v1=" . ('0' x 64) . "\r\n", 401,
     'SIGNATURE_INVALID');
hook('stripe', 't= empty', "Stripe-Signature: t=,v1=" . ('0' x 64) . "\r\n",
     401, 'SIGNATURE_INVALID');
hook('stripe', 'only commas', "Stripe-Signature: ,,,,\r\n", 401,
     'SIGNATURE_INVALID');
hook('standard', 'id missing', "webhook-timestamp: $ts\r\n"
     . "webhook-signature: v1,$std\r\n", 401, 'SIGNATURE_MISSING');
hook('standard', 'id of 5,000 bytes', "webhook-id: " . ('i' x 5000)
     . "\r\nwebhook-timestamp: $ts\r\nwebhook-signature: v1,$std\r\n", 401,
     'SIGNATURE_INVALID');

# ---- bodies --------------------------------------------------------------

my $gh = "X-Hub-Signature-256: sha256=$mac\r\nX-GitHub-Delivery: 2\r\n";

sub raw {
    my ($area, $what, $text, $status, $code) = @_;
    add($area, $what, $text, $status, $code);
}

for my $uri ('/hook/github', '/api/b') {
    my $hd = $uri eq '/api/b' ? "$AUTH" . "Idempotency-Key: b1\r\n" : $gh;
    my $a = "body $uri";

    raw($a, 'Content-Length not a number', "POST $uri HTTP/1.1\r\n"
        . "Host: localhost\r\n${hd}Content-Length: abc\r\n\r\n$BODY", 400,
        'nginx');
    raw($a, 'Content-Length negative', "POST $uri HTTP/1.1\r\n"
        . "Host: localhost\r\n${hd}Content-Length: -1\r\n\r\n$BODY", 400,
        'nginx');
    raw($a, 'Content-Length of 25 digits', "POST $uri HTTP/1.1\r\n"
        . "Host: localhost\r\n${hd}Content-Length: " . ('9' x 25)
        . "\r\n\r\n$BODY", 400, 'nginx');
    raw($a, 'two Content-Lengths', "POST $uri HTTP/1.1\r\n"
        . "Host: localhost\r\n${hd}Content-Length: 3\r\nContent-Length: 4"
        . "\r\n\r\nabcd", 400, 'nginx');
    raw($a, 'Content-Length and chunked', "POST $uri HTTP/1.1\r\n"
        . "Host: localhost\r\n${hd}Content-Length: 3\r\n"
        . "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400,
        'nginx');
    raw($a, 'unknown transfer coding', "POST $uri HTTP/1.1\r\n"
        . "Host: localhost\r\n${hd}Transfer-Encoding: gzip\r\n\r\nx", 501,
        'nginx');
    raw($a, 'chunk size not hex', "POST $uri HTTP/1.1\r\nHost: localhost\r\n"
        . "${hd}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        400, 'nginx');
    raw($a, 'chunk size overflowing', "POST $uri HTTP/1.1\r\n"
        . "Host: localhost\r\n${hd}Transfer-Encoding: chunked\r\n\r\n"
        . ('f' x 20) . "\r\nabc\r\n0\r\n\r\n", 400, 'nginx');
    raw($a, 'chunk without CRLF', "POST $uri HTTP/1.1\r\nHost: localhost\r\n"
        . "${hd}Transfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n", 400,
        'nginx');
    raw($a, 'body shorter than Content-Length', "POST $uri HTTP/1.1\r\n"
        . "Host: localhost\r\n${hd}Content-Length: 100\r\n\r\nabc", 0,
        'none');
    raw($a, 'chunked, truncated', "POST $uri HTTP/1.1\r\nHost: localhost\r\n"
        . "${hd}Transfer-Encoding: chunked\r\n\r\n10\r\nabc", 0, 'none');
}

# ---- HTTP/1.0, odd request lines, pipelining ---------------------------

raw('http', 'HTTP/1.0 without Host, a good token',
    "GET /api/h HTTP/1.0\r\n$AUTH\r\n", 200, '');
raw('http', 'HTTP/1.0 without a token', "GET /api/h HTTP/1.0\r\n\r\n", 401,
    'TOKEN_MISSING');
raw('http', 'HTTP/1.0 webhook without a signature',
    "POST /hook/github HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}", 401,
    'SIGNATURE_MISSING');
raw('http', 'HTTP/0.9 (no headers, so no token)', "GET /api/h\r\n", 0,
    'http09');
raw('http', 'HTTP/2.0 in a text request line',
    "GET /api/h HTTP/2.0\r\nHost: x\r\nConnection: close\r\n\r\n", 505,
    'nginx');
raw('http', 'a request line of junk', "\x01\x02\x03\r\n\r\n", 400, 'nginx');
raw('http', 'header line without a colon (nginx: an empty header)',
    "GET /api/h HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n$AUTH"
    . "Connection: close\r\n\r\n", 200,
    '');
raw('http', 'Host of 10,000 bytes', "GET /api/h HTTP/1.1\r\nHost: "
    . ('h' x 10000) . "\r\n$AUTH\r\n", 400, 'nginx');

# pipelined: several requests in one write, answered in order
our @PIPES = (
    ['pipelined: tokens good, bad, missing',
     ["GET /api/pipe1/p1 HTTP/1.1\r\nHost: x\r\n$AUTH\r\n",
      "GET /api/x/p2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a.b.c\r\n\r\n",
      "GET /api/x/p3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
     [200, 401, 401], ['', 'TOKEN_MALFORMED', 'TOKEN_MISSING']],
    ['pipelined: webhooks bad then good',
     ["POST /hook/github/p4 HTTP/1.1\r\nHost: x\r\nContent-Length: "
      . length($BODY) . "\r\nX-Hub-Signature-256: sha256=" . ('0' x 64)
      . "\r\n\r\n$BODY",
      "POST /hook/github/p5 HTTP/1.1\r\nHost: x\r\nContent-Length: "
      . length($BODY) . "\r\n$gh" . "Connection: close\r\n\r\n$BODY"],
     [401, 200], ['SIGNATURE_INVALID', '']],
    # nginx closes the connection after a 400: nothing after it is read
    ['pipelined: idempotency keys good, then bad',
     ["POST /api/x/p6 HTTP/1.1\r\nHost: x\r\n${AUTH}Idempotency-Key: p-1\r\n"
      . "Content-Length: 2\r\n\r\n{}",
      "POST /api/x/p7 HTTP/1.1\r\nHost: x\r\n${AUTH}Idempotency-Key: a b\r\n"
      . "Content-Length: 2\r\n\r\n{}"],
     [200, 400], ['', 'IDEMPOTENCY_KEY_INVALID']],
);

sub pipe_raw { return CORE::join '', @{ $PIPES[$_[0]][1] } }

sub pipe_log {
    my ($i) = @_;
    my ($what, $reqs, $st) = @{ $PIPES[$i] };
    return [map { my ($line) = $reqs->[$_] =~ /\A([^\r]+)\r\n/;
                  qr/"\Q$line\E" $st->[$_] / } 0 .. $#$reqs];
}

# ---- the blocks ------------------------------------------------------------

sub body_check {
    my ($code) = @_;
    return qr/\Aok\n\z/ if $code eq '';
    return qr/\A\z/ if $code eq 'empty';
    return qr/<title>\d{3} [^<]+<\/title>/ if $code eq 'nginx';
    return qr/\A\{"type":"urn:apipolicy:problem:[a-z-]+","title":"[^"]+",/
           . qr/"status":\d{3},"detail":"[^"]*","code":"\Q$code\E"\}\n\z/;
}

my $spec = '';
my $n = 0;

for my $i (0 .. $#CASES) {
    my ($area, $what, undef, $status, $code) = @{ $CASES[$i] };
    $n++;
    $spec .= "=== TEST $n: $area: $what\n";
    $spec .= "--- raw_request eval\n\$main::CASES[$i][2]\n";
    if ($code eq 'http09') {
        $spec .= "--- http09\n--- response_body_like eval\n"
                 . "main::body_check('TOKEN_MISSING')\n";
    } elsif ($code eq 'none') {
        # nginx gives up on the body after client_body_timeout (1 s here)
        # and closes the connection without an answer (logged as 408)
        $spec .= "--- error_code_like: ^\$\n--- error_log\n"
                 . "http finalize request: 408\n";
    } else {
        $spec .= "--- error_code: $status\n";
        $spec .= "--- response_body_like eval\nmain::body_check('$code')\n";
    }
    $spec .= "--- timeout: 2\n--- no_error_log\n[alert]\n[crit]\nsignal\n\n";
}

for my $i (0 .. $#PIPES) {
    my ($what, undef, $st, $codes) = @{ $PIPES[$i] };
    $n++;
    $spec .= "=== TEST $n: http: $what\n";
    $spec .= "--- raw_request eval\nmain::pipe_raw($i)\n";
    # every answer, in order, in the access log (its URIs are its own)
    $spec .= "--- error_code: $st->[0]\n";
    $spec .= "--- access_log eval\nmain::pipe_log($i)\n";
    $spec .= "--- timeout: 2\n--- no_error_log\n[alert]\n[crit]\nsignal\n\n";
}

# the gateway, once, for the first block; the others reuse it
my $first = 1;
add_block_preprocessor(sub {
    my $block = shift;
    return if !$first;
    $first = 0;
    $block->set_value('http_config', <<'_EOC_');
    apipolicy_ratelimit_zone api:1m;
    apipolicy_ratelimit_tier default rate=100000r/s;
    apipolicy_idempotency_zone idem:1m;
    apipolicy_webhook_zone hooks:1m;
    client_body_timeout 1s;
_EOC_
    $block->set_value('config', <<'_EOC_');
    location /api/ {
        apipolicy_cors_origins https://app.example.com https://*.example.org;
        apipolicy_cors_credentials on;
        apipolicy_cors_reject on;
        apipolicy_cors_headers content-type x-request-id;
        apipolicy_cors_private_network on;
        apipolicy_version deprecated=@1000000000;
        apipolicy_jwt on;
        apipolicy_jwt_secret $TEST_NGINX_JWT_SECRET;
        apipolicy_jwt_max_size 4k;
        apipolicy_ratelimit zone=api key=$remote_addr;
        apipolicy_idempotency zone=idem required;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /hook/standard {
        apipolicy_webhook standard secret=$TEST_NGINX_WHSEC replay_zone=hooks;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /hook/stripe {
        apipolicy_webhook stripe secret=catalogue-webhook-secret-0123456 replay_zone=hooks;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /hook/github {
        apipolicy_webhook github secret=catalogue-webhook-secret-0123456;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /hook/slack {
        apipolicy_webhook slack secret=catalogue-webhook-secret-0123456 replay_zone=hooks;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /hook/shopify {
        apipolicy_webhook shopify secret=catalogue-webhook-secret-0123456;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /hook/hmac {
        apipolicy_webhook hmac secret=catalogue-webhook-secret-0123456 header=X-Signature prefix=sha256= encoding=hex;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/backend;
    }
    location /backend {
        return 200 "ok\n";
    }
_EOC_
});

spec_string($spec);
run_tests();
