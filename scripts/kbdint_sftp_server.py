#!/usr/bin/env python3
"""An SFTP server on 127.0.0.1 that lets users in by keyboard-interactive only:
a hidden `Password: ` prompt, then a shown `Verification code: ` prompt, as a
lab's PAM with a second factor asks. For dvt's SSH tests (asyncssh, installed
into .venv-test by scripts/servers.sh); OpenSSH's server would need PAM and a
system account with a password.

    kbdint_sftp_server.py PORT HOST_KEY ROOT PASSWORD CODE

Prints `ready` once it listens; serves ROOT as `/`.
"""

import asyncio
import sys

import asyncssh

PORT, HOST_KEY, ROOT, PASSWORD, CODE = sys.argv[1:6]


class Server(asyncssh.SSHServer):
    def begin_auth(self, username):
        self.step = 0
        return True

    def password_auth_supported(self):
        return False

    def public_key_auth_supported(self):
        return False

    def kbdint_auth_supported(self):
        return True

    def get_kbdint_challenge(self, username, lang, submethods):
        self.step = 0
        return "", "", "", [("Password: ", False)]

    def validate_kbdint_response(self, username, responses):
        if self.step == 0:
            if responses != [PASSWORD]:
                return False
            self.step = 1
            return "", "", "", [("Verification code: ", True)]
        return responses == [CODE]


async def main():
    await asyncssh.listen(
        "127.0.0.1",
        int(PORT),
        server_host_keys=[HOST_KEY],
        server_factory=Server,
        sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=ROOT),
    )
    print("ready", flush=True)
    await asyncio.Future()


asyncio.run(main())
