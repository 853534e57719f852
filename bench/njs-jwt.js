// An HS256 JWT check in njs, as commonly written for nginx without a
// JWT module: decode, HMAC-SHA256, compare, parse the claims, check
// "exp".  The bench compares apipolicy's verifier with it.
var crypto = require('crypto');

function verify(r) {
    try {
        var h = r.headersIn.Authorization;

        if (!h || h.slice(0, 7).toLowerCase() !== 'bearer ') {
            return '0';
        }

        var p = h.slice(7).split('.');

        if (p.length !== 3) {
            return '0';
        }

        var header = JSON.parse(Buffer.from(p[0], 'base64url').toString());

        if (header.alg !== 'HS256') {
            return '0';
        }

        var sig = crypto.createHmac('sha256', r.variables.jwt_secret)
                        .update(p[0] + '.' + p[1]).digest('base64url');

        if (sig !== p[2]) {
            return '0';
        }

        var claims = JSON.parse(Buffer.from(p[1], 'base64url').toString());

        if (typeof claims.exp !== 'number' || claims.exp < Date.now() / 1000) {
            return '0';
        }

        return '1';

    } catch (e) {
        return '0';
    }
}

export default { verify };
