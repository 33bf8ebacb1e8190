#!/usr/bin/env bash
# Installs what the matrix needs (idempotent; root): qemu-system-*, cpio, the cross gccs and
# qemu-user, and the foreign dpkg architectures the kernel and Rust std downloads need.
# The list is scripts/setup-deps's group `matrix` (qemu from bookworm-backports when the
# machine's qemu already comes from there, as on an image with qemu-utils 10.0).
set -euo pipefail
exec "$(dirname "$0")/../../scripts/setup-deps" matrix
