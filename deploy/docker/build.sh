#!/usr/bin/env bash
# Builds the static zccadapter binary and the lab's image, FROM scratch:
#
#   bin/zccadapter      the binary for this machine (the drill runs it)
#   zccadapter:dev      the image every service of docker-compose.yml runs
#
# Nothing is pulled from a registry: the image holds the binary (built with
# CGO_ENABLED=0; its `etcd` subcommand is the etcd server module go.mod pins)
# and this machine's CA bundle (for a node that talks to the real Zoom).
#
# Usage: deploy/docker/build.sh
# Environment:
#   ZCC_LAB_IMAGE  image name and tag (default zccadapter:dev; docker-compose.yml
#                  reads the same variable)
#   VERSION        version stamped into the binary (default: git describe, else dev)
set -euo pipefail
cd "$(dirname "$0")/../.."

image="${ZCC_LAB_IMAGE:-zccadapter:dev}"
version="${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
command -v go >/dev/null || { echo "build.sh: go is not installed (Go 1.26 needed)" >&2; exit 1; }
command -v docker >/dev/null || { echo "build.sh: docker is not installed" >&2; exit 1; }
server_arch="$(docker version --format '{{.Server.Arch}}' 2>/dev/null)" ||
	{ echo "build.sh: the docker engine does not answer (docker version failed)" >&2; exit 1; }

export CGO_ENABLED=0
ldflags="-s -w -X main.version=${version}"
build() { # GOOS GOARCH OUTPUT
	GOOS="$1" GOARCH="$2" go build -buildvcs=false -trimpath -ldflags "$ldflags" -o "$3" ./cmd/zccadapter
}

start=$SECONDS
mkdir -p bin
echo "build.sh: go build (static) -> bin/zccadapter (version ${version})"
build "$(go env GOOS)" "$(go env GOARCH)" bin/zccadapter

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
if [[ "$(go env GOOS)/$(go env GOARCH)" == "linux/${server_arch}" ]]; then
	cp bin/zccadapter "$ctx/zccadapter"
else
	echo "build.sh: go build (static) for the engine's linux/${server_arch}"
	build linux "$server_arch" "$ctx/zccadapter"
fi
mkdir "$ctx/data"
cp deploy/docker/Dockerfile "$ctx/Dockerfile"
ca=""
for f in "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
	if [[ -n "$f" && -s "$f" ]]; then ca="$f"; break; fi
done
if [[ -n "$ca" ]]; then
	cp "$ca" "$ctx/ca-certificates.crt"
else
	: >"$ctx/ca-certificates.crt"
	echo "build.sh: warning: no CA bundle found on this machine; the image can reach the simulators but not a real Zoom account over TLS" >&2
fi

echo "build.sh: docker build FROM scratch -> ${image}"
docker build --quiet --label "org.opencontainers.image.version=${version}" -t "$image" "$ctx" >/dev/null
echo "build.sh: done in $((SECONDS - start))s: bin/zccadapter and ${image} ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
