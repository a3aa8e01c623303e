#!/usr/bin/env bash
# Runs the all-in-one registry on 127.0.0.1:5000 with its data in ./data (pass --urls / --Wharf:DataPath=... to change).
set -euo pipefail
cd "$(dirname "$0")"
export Wharf__DataPath="${Wharf__DataPath:-$PWD/data}"
exec dotnet run --project src/Silo -c Release -- "$@"
