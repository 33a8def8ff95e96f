"""Verifies a forcelink login token the way a platform would, with PyJWT (an independent JOSE
implementation): the signature against the published JWKS, `iss`, `aud`, `exp`, and the
claims forcelink promises. Prints the claims as JSON and exits 0, or prints why and exits 1.

    python verify_login_token.py --jwks jwks.json --issuer URL --audience ORIGIN --token TOKEN
"""

import argparse
import json
import sys

import jwt

REQUIRED = ["iss", "aud", "sub", "site", "org", "sf_user", "iat", "exp", "jti", "next"]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--jwks", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--audience", required=True)
    p.add_argument("--token", required=True)
    a = p.parse_args()
    with open(a.jwks) as f:
        keys = jwt.PyJWKSet.from_dict(json.load(f))
    try:
        kid = jwt.get_unverified_header(a.token)["kid"]
        key = next(k for k in keys.keys if k.key_id == kid)
        claims = jwt.decode(
            a.token,
            key=key,
            algorithms=["EdDSA"],
            audience=a.audience,
            issuer=a.issuer,
            options={"require": REQUIRED},
        )
    except (jwt.PyJWTError, StopIteration, KeyError) as e:
        print(f"refused: {type(e).__name__}: {e}")
        return 1
    if claims["exp"] - claims["iat"] > 120:
        print("refused: lives longer than 2 minutes")
        return 1
    print(json.dumps(claims, sort_keys=True, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
