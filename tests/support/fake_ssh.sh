#!/bin/sh
# A stand-in for ssh in tests (git's core.sshCommand): drops ssh's options and
# the host, and runs the remote command (git-upload-pack or git-receive-pack
# with the repository's path) on this machine, as sshd would run it there.
while [ $# -gt 0 ]; do
  case "$1" in
    -o|-p|-i|-l) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
shift
exec sh -c "$*"
