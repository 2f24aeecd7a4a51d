# shellcheck shell=bash
# Shared helpers for scripts/stress/*: logging, option parsing, requirements,
# and mounting a target with cleanup. Sourced, not run.
#
# Every script takes the same options:
#   --short | --long      profile (default --short: CI, a few minutes in all)
#   --seconds N           time budget of this script (--long default: 600)
#   --target DIR          run in DIR (an existing directory or mount); a fresh
#                         subdirectory is made in it and removed afterwards.
#                         Without it a FUSE mount is made in a mktemp dir:
#                           - DEDUPFS_STRESS_MOUNT_CMD set: that command, run as
#                             `exec $DEDUPFS_STRESS_MOUNT_CMD MOUNTPOINT` by bash
#                             (so it is word-split, may hold options, and gets the
#                             mountpoint as its last argument). It must mount
#                             MOUNTPOINT and stay in the foreground until the
#                             mount goes away (or it gets SIGTERM).
#                           - otherwise --fs dedupfs (the default): DedupFs itself,
#                             `dedupfs mount --foreground` over a fresh store kept
#                             beside the mount, with -o cache=shared or, with
#                             --cache kernel, cache=kernel; remounts keep the store,
#                             so the remount checks run too, and the store is
#                             checked with `dedupfs fsck` after the last unmount;
#                           - or --fs memory: the C# test host's in-memory filesystem
#                             (tests/DedupFs.Fuse.TestHost ... memory MOUNTPOINT).
#                           Missing builds are made with `dotnet build -c Release`.
#
# Processes are only ever stopped by the PID recorded when they were started.

STRESS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STRESS_ROOT="$(cd "$STRESS_DIR/../.." && pwd)"
# need_packages (installs what is missing, as scripts/test does); log and die are ours, below.
# shellcheck source=../lib/common.sh
source "$STRESS_ROOT/scripts/lib/common.sh"
STRESS_TESTHOST_DLL="$STRESS_ROOT/tests/DedupFs.Fuse.TestHost/bin/Release/net10.0/DedupFs.Fuse.TestHost.dll"
STRESS_CLI_DLL="$STRESS_ROOT/src/DedupFs.Cli/bin/Release/net10.0/dedupfs.dll"
# Inherited by the sub-scripts (and scripts/stress/remount) through the environment.
export DEDUPFS_STRESS_FS="${DEDUPFS_STRESS_FS:-dedupfs}"
export DEDUPFS_STRESS_CACHE="${DEDUPFS_STRESS_CACHE:-shared}"
STRESS_NAME="${STRESS_NAME:-$(basename "$0")}"

log() { printf '[%s %s] %s\n' "$STRESS_NAME" "$(date +%H:%M:%S)" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# ---- options ---------------------------------------------------------------
PROFILE=short
SECONDS_BUDGET=""
TARGET=""
STRESS_ARGS_REST=()

stress_parse_args() {
	while [ $# -gt 0 ]; do
		case "$1" in
		--short) PROFILE=short ;;
		--long) PROFILE=long ;;
		--seconds)
			[ $# -ge 2 ] || die "--seconds needs a value"
			[[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || die "--seconds takes a positive number of seconds"
			SECONDS_BUDGET="$2"
			shift
			;;
		--fs)
			[[ "${2:-}" == dedupfs || "${2:-}" == memory ]] || die "--fs takes dedupfs or memory"
			DEDUPFS_STRESS_FS="$2"
			shift
			;;
		--cache)
			[[ "${2:-}" == shared || "${2:-}" == kernel ]] || die "--cache takes shared or kernel"
			DEDUPFS_STRESS_CACHE="$2"
			shift
			;;
		--target)
			[ $# -ge 2 ] || die "--target needs a directory"
			TARGET="$2"
			shift
			;;
		-h | --help)
			awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
			exit 0
			;;
		*) STRESS_ARGS_REST+=("$1") ;;
		esac
		shift
	done
	if [ -z "$SECONDS_BUDGET" ]; then
		if [ "$PROFILE" = long ]; then SECONDS_BUDGET=600; else SECONDS_BUDGET=0; fi
	fi
}

# ---- requirements ------------------------------------------------------------
# stress_need CMD:PACKAGE ... — installs missing Debian packages as root,
# otherwise says what to install and fails (scripts/lib/common.sh).
stress_need() { need_packages "$@"; }

# Builds native/ (probes and dfsx) when a binary is missing or older than its source.
stress_build_native() {
	stress_need make:make gcc:gcc
	make -s -C "$STRESS_ROOT/native" probes fsx >&2 || die "make -C native probes fsx failed"
}

# ---- mounts ------------------------------------------------------------------
# State shared with scripts/stress/remount (and with the children of dfsx's
# --remount-cmd): the directory holds `mountpoint` and `server.pid`.
STRESS_STATE="${STRESS_STATE:-}"
STRESS_OWN_STATE=0
STRESS_MNT=""
STRESS_WORKDIR="" # the fresh directory this script works in
STRESS_LOGDIR=""  # local scratch for logs (outside the target, which may die)
STRESS_CLEANUP_HOOKS=()

is_mounted() { # MNT (canonical path): per the kernel's table, also for a dead FUSE server
	awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# stress_stop_pid PID [GRACE]: wait GRACE seconds (default 10) for it to exit,
# then SIGTERM, then SIGKILL. Only for PIDs we started.
stress_stop_pid() {
	local pid="$1" grace="${2:-10}" i
	[ -n "$pid" ] || return 0
	for ((i = 0; i < grace * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	log "server PID $pid still running; sending SIGTERM"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	log "server PID $pid ignored SIGTERM; sending SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
}

stress_unmount() { # MNT
	local mnt="$1" i
	is_mounted "$mnt" || return 0
	for ((i = 0; i < 5; i++)); do
		umount "$mnt" 2>/dev/null && return 0
		is_mounted "$mnt" || return 0
		sleep 1
	done
	log "umount $mnt failed 5 times (busy?); using umount -l"
	umount -l "$mnt" || true
}

# The command line that serves MNT, in the foreground.
stress_server_cmd() { # MNT
	if [ -n "${DEDUPFS_STRESS_MOUNT_CMD:-}" ]; then
		# shellcheck disable=SC2016
		printf '%s\0' bash -c "exec $DEDUPFS_STRESS_MOUNT_CMD \"\$1\"" stress-mount "$1"
	elif [ "$DEDUPFS_STRESS_FS" = dedupfs ]; then
		printf '%s\0' dotnet "$STRESS_CLI_DLL" mount --foreground --store "$STRESS_STATE/store" \
			-o "cache=$DEDUPFS_STRESS_CACHE" "$1"
	else
		printf '%s\0' dotnet "$STRESS_TESTHOST_DLL" memory "$1"
	fi
}

# Starts the server for the mountpoint recorded in $STRESS_STATE, records its
# PID in $STRESS_STATE/server.pid and waits (60 s at most) for the mount.
stress_start_server() {
	local mnt cmd=() pid i n
	mnt="$(cat "$STRESS_STATE/mountpoint")"
	while IFS= read -r -d '' i; do cmd+=("$i"); done < <(stress_server_cmd "$mnt")
	n=$(($(cat "$STRESS_STATE/mounts" 2>/dev/null || echo 0) + 1))
	echo "$n" >"$STRESS_STATE/mounts"
	log "mounting $mnt: ${cmd[*]}"
	# setsid: the server must not get the terminal's SIGINT before we unmount it.
	setsid "${cmd[@]}" >"$STRESS_STATE/server-$n.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$STRESS_STATE/server.pid"
	for ((i = 0; i < 600; i++)); do
		if is_mounted "$mnt"; then
			log "mounted $mnt (server PID $pid)"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			log "the server exited before mounting; its output:"
			sed 's/^/  | /' "$STRESS_STATE/server-$n.log" >&2
			return 1
		fi
		sleep 0.1
	done
	log "no mount on $mnt after 60 s; server output:"
	sed 's/^/  | /' "$STRESS_STATE/server-$n.log" >&2
	return 1
}

# Unmounts and stops the recorded server (waiting for it to exit on its own first).
stress_stop_server() {
	local mnt pid
	mnt="$(cat "$STRESS_STATE/mountpoint")"
	pid="$(cat "$STRESS_STATE/server.pid" 2>/dev/null || true)"
	stress_unmount "$mnt"
	stress_stop_pid "$pid" 15
	rm -f "$STRESS_STATE/server.pid"
	# A .NET server that died by a signal leaves its diagnostic pipes behind.
	if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
		rm -f /tmp/clr-debug-pipe-"$pid"-* /tmp/dotnet-diagnostic-"$pid"-* 2>/dev/null || true
	fi
	if [ -n "$pid" ]; then
		local n
		n="$(cat "$STRESS_STATE/mounts")"
		if grep -q . "$STRESS_STATE/server-$n.log" 2>/dev/null; then
			log "server output:"
			sed 's/^/  | /' "$STRESS_STATE/server-$n.log" >&2
		fi
	fi
}

stress_cleanup() {
	local rc=$? h
	trap - EXIT INT TERM HUP
	for h in "${STRESS_CLEANUP_HOOKS[@]}"; do "$h" || true; done
	if [ -n "$STRESS_WORKDIR" ] && [ -d "$STRESS_WORKDIR" ]; then
		rm -rf "$STRESS_WORKDIR" 2>/dev/null || log "could not remove $STRESS_WORKDIR"
	fi
	[ -z "$STRESS_LOGDIR" ] || rm -rf "$STRESS_LOGDIR"
	if [ "$STRESS_OWN_STATE" = 1 ]; then
		[ -f "$STRESS_STATE/mountpoint" ] && stress_stop_server
		if [ -n "$STRESS_MNT" ]; then
			is_mounted "$STRESS_MNT" && umount -l "$STRESS_MNT" 2>/dev/null
			rmdir "$STRESS_MNT" 2>/dev/null || log "could not remove mountpoint $STRESS_MNT"
		fi
		rm -rf "$STRESS_STATE"
	fi
	exit "$rc"
}

# Sets STRESS_WORKDIR: a fresh directory inside --target, or inside a mount
# this script makes (and later removes).
stress_setup_target() {
	trap stress_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	local base
	if [ -n "$TARGET" ]; then
		[ -d "$TARGET" ] || die "--target $TARGET is not a directory"
		base="$(cd "$TARGET" 2>&1 && pwd -P)" || die "cannot enter --target $TARGET: $base"
	else
		[ "$(id -u)" -eq 0 ] || die "mounting a FUSE target needs root (or pass --target DIR)"
		[ -e /dev/fuse ] || die "/dev/fuse is missing (modprobe fuse)"
		if [ -z "${DEDUPFS_STRESS_MOUNT_CMD:-}" ] && [ "$DEDUPFS_STRESS_FS" = dedupfs ]; then
			command -v dotnet >/dev/null 2>&1 || die "dotnet (the .NET 10 SDK) is needed, or set DEDUPFS_STRESS_MOUNT_CMD / pass --target"
			if [ ! -f "$STRESS_CLI_DLL" ]; then
				log "building DedupFs: dotnet build -c Release src/DedupFs.Cli"
				DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 dotnet build -c Release "$STRESS_ROOT/src/DedupFs.Cli" -nologo -v q >&2 ||
					die "dotnet build src/DedupFs.Cli failed"
			fi
			# DedupFs keeps its data across a remount: the remount checks apply.
			export DEDUPFS_STRESS_REMOUNT=1
		elif [ -z "${DEDUPFS_STRESS_MOUNT_CMD:-}" ]; then
			command -v dotnet >/dev/null 2>&1 || die "dotnet (the .NET 10 SDK) is needed for the test host, or set DEDUPFS_STRESS_MOUNT_CMD / pass --target"
			if [ ! -f "$STRESS_TESTHOST_DLL" ]; then
				log "building the test host: dotnet build -c Release tests/DedupFs.Fuse.TestHost"
				DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 dotnet build -c Release "$STRESS_ROOT/tests/DedupFs.Fuse.TestHost" -nologo -v q >&2 ||
					die "dotnet build tests/DedupFs.Fuse.TestHost failed"
			fi
		fi
		STRESS_STATE="$(mktemp -d /tmp/dedupfs-stress-state.XXXXXX)"
		STRESS_OWN_STATE=1
		export STRESS_STATE
		STRESS_MNT="$(mktemp -d /tmp/dedupfs-stress-mnt.XXXXXX)"
		echo "$STRESS_MNT" >"$STRESS_STATE/mountpoint"
		stress_start_server || die "could not mount the target"
		base="$STRESS_MNT"
	fi
	STRESS_LOGDIR="$(mktemp -d /tmp/dedupfs-stress-log.XXXXXX)"
	STRESS_WORKDIR="$(mktemp -d "$base/stress-$STRESS_NAME.XXXXXX")" || die "cannot create a directory in $base"
	log "working in $STRESS_WORKDIR"
}

# Seconds since the epoch with a fraction, for the summary.
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
