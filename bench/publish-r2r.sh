#!/usr/bin/env bash
# Publishes Gateway.Server as docker/Dockerfile does — Release, framework-dependent, with ReadyToRun code for this
# machine's runtime identifier — into src/Gateway.Server/bin/Release/net10.0/publish-r2r (bench/restart.sh runs it).
set -Eeuo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exec dotnet publish "$REPO/src/Gateway.Server/Gateway.Server.csproj" -c Release -nologo -v q --use-current-runtime \
    --self-contained false -p:PublishReadyToRun=true -p:UseAppHost=false \
    -o "$REPO/src/Gateway.Server/bin/Release/net10.0/publish-r2r"
