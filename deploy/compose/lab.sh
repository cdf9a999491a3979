#!/usr/bin/env bash
# The redundancy lab (docker-compose.yml at the repository's root), one
# command per step; works with `docker compose` (the plugin) or the
# standalone docker-compose, whichever is installed.
#
#   deploy/compose/lab.sh up             build the binary and image (deploy/docker/build.sh),
#                                        start the lab, wait until every service is healthy
#   deploy/compose/lab.sh drill [ARGS]   zccadapter drill --compose (default scenario:
#                                        deploy/scenarios/compose-kill-and-etcd-restart.yaml)
#   deploy/compose/lab.sh down           remove containers, networks and volumes
#   deploy/compose/lab.sh ps | logs [SERVICE...]
#
# COMPOSE_PROJECT_NAME selects another project (default: the repository
# directory's name); the published ports are fixed, so one lab runs at a time.
set -euo pipefail
cd "$(dirname "$0")/../.."

if docker compose version >/dev/null 2>&1; then
	compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
	compose=(docker-compose)
else
	echo "lab.sh: neither \`docker compose\` nor docker-compose is installed" >&2
	exit 1
fi
compose+=(-f docker-compose.yml)
services=(etcd-1 etcd-2 etcd-3 zoom recorder ris-a ris-b)

# wait_healthy waits until every service's container reports healthy.
wait_healthy() {
	local deadline=$((SECONDS + ${1:-180})) id svc state pending
	while :; do
		pending=()
		for svc in "${services[@]}"; do
			id="$("${compose[@]}" ps -a -q "$svc" 2>/dev/null | head -n1 || true)"
			state="$( [[ -n "$id" ]] && docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id" 2>/dev/null || echo missing/)"
			case "$state" in
			running/healthy) ;;
			exited/* | dead/* | missing/)
				echo "lab.sh: $svc is ${state%/*}; its last lines:" >&2
				"${compose[@]}" logs --no-color --tail=20 "$svc" >&2 || true
				return 1 ;;
			*) pending+=("$svc:${state#*/}") ;;
			esac
		done
		((${#pending[@]} == 0)) && return 0
		if ((SECONDS >= deadline)); then
			echo "lab.sh: not healthy in time: ${pending[*]}" >&2
			return 1
		fi
		sleep 1
	done
}

cmd="${1:-}"
shift || true
case "$cmd" in
up)
	start=$SECONDS
	deploy/docker/build.sh
	"${compose[@]}" up -d --no-build "$@"
	wait_healthy 180
	echo "lab.sh: the lab is up and healthy in $((SECONDS - start))s:"
	echo "  ris-a http://127.0.0.1:18081/status   ris-b http://127.0.0.1:18082/status"
	echo "  zoom  http://127.0.0.1:19000          recorder http://127.0.0.1:18090/v1/ledger"
	echo "  etcd  127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793"
	;;
drill)
	mkdir -p bin
	CGO_ENABLED=0 go build -buildvcs=false -o bin/zccadapter ./cmd/zccadapter
	exec bin/zccadapter drill --compose --scenario deploy/scenarios/compose-kill-and-etcd-restart.yaml "$@"
	;;
down)
	"${compose[@]}" down -v --remove-orphans "$@"
	;;
ps | logs)
	"${compose[@]}" "$cmd" "$@"
	;;
*)
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
