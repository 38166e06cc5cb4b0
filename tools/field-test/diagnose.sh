#!/usr/bin/env bash
# Runs MlPitfalls' analyzers over every response file of the corpus and prints every MlPitfalls diagnostic
# (rule, project, file:line:col, message), sorted, then every analyzer exception (AD0001) with its stack.
#
#   diagnose.sh                          build /work/main's analyzers (Release) and run them
#   diagnose.sh --source DIR             build the analyzers of another checkout (e.g. a worktree of an older commit)
#   diagnose.sh --analyzers DLL          use an already built MlPitfalls.Analyzers.dll (netstandard2.0)
#   other options go to the driver:      --context MLP009,MLP010   source around each diagnostic of those rules
#                                        --projects FILE           per-project table (lines, errors, TorchSharp bound, ms)
#                                        --rsp DIR_OR_FILE         other response files than corpus/rsp
set -euo pipefail
TOOLS=$(cd "$(dirname "$0")" && pwd)
export CORPUS=${CORPUS:-/work/corpus}
export REPOSITORIES=${REPOSITORIES:-$TOOLS/repositories.txt}
DRIVER=$CORPUS/bin/Diagnose
source_dir=/work/main
analyzers=
pass=()
while (( $# )); do
  case $1 in
    --source) source_dir=$2; shift 2 ;;
    --analyzers) analyzers=$2; shift 2 ;;
    *) pass+=("$1"); shift ;;
  esac
done

if [[ -z $analyzers ]]; then
  echo "# source: $source_dir at $(git -C "$source_dir" rev-parse HEAD 2>/dev/null || echo '?')$( [[ -n $(git -C "$source_dir" status --porcelain --untracked-files=no 2>/dev/null) ]] && echo ' (with uncommitted changes)')"
  dotnet build "$source_dir/src/MlPitfalls.Analyzers" -c Release -nologo -v quiet >&2
  analyzers=$(find "$source_dir/src/MlPitfalls.Analyzers/bin/Release" -path '*netstandard2.0*' -name MlPitfalls.Analyzers.dll | head -1)
fi
[[ -f $analyzers ]] || { echo "no MlPitfalls.Analyzers.dll ($analyzers)" >&2; exit 1; }

if [[ ! -f $DRIVER/Diagnose.dll ]]; then
  dotnet build "$TOOLS/Diagnose/Diagnose.csproj" -c Release -o "$DRIVER" -nologo -v quiet >&2
fi
exec dotnet "$DRIVER/Diagnose.dll" run --analyzers "$analyzers" "${pass[@]}"
