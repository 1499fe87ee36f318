#!/usr/bin/env python3
"""Creates a container on an Azurite blob endpoint, signed with SharedKey.

usage: azure_container.py ENDPOINT CONTAINER
ENDPOINT is like http://127.0.0.1:10000/devstoreaccount1. The account and key are
Azurite's published development-storage defaults. Used by the remote tests to give
every test a container of its own.
"""
import base64
import hashlib
import hmac
import sys
import urllib.request
from email.utils import formatdate

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def main():
    endpoint, container = sys.argv[1].rstrip("/"), sys.argv[2]
    date = formatdate(usegmt=True)
    version = "2021-08-06"
    canonical_headers = f"x-ms-date:{date}\nx-ms-version:{version}\n"
    canonical_resource = f"/{ACCOUNT}/{ACCOUNT}/{container}\nrestype:container"
    # VERB, then 11 standard headers (all empty but Content-Length "" for 0), then ours.
    to_sign = "PUT\n" + "\n" * 11 + canonical_headers + canonical_resource
    sig = base64.b64encode(
        hmac.new(base64.b64decode(KEY), to_sign.encode(), hashlib.sha256).digest()
    ).decode()
    req = urllib.request.Request(
        f"{endpoint}/{container}?restype=container",
        method="PUT",
        headers={
            "x-ms-date": date,
            "x-ms-version": version,
            "Authorization": f"SharedKey {ACCOUNT}:{sig}",
            "Content-Length": "0",
        },
    )
    with urllib.request.urlopen(req) as resp:
        if resp.status not in (200, 201):
            sys.exit(f"creating container {container}: HTTP {resp.status}")


if __name__ == "__main__":
    main()
