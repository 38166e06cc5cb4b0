#!/usr/bin/env bash
# Step 2 of the corpus: one lenient csc response file per TorchSharp project of /work/corpus/src (rsp/), plus the
# metadata-only assemblies of the in-repository projects they reference (refs/, from deps/ and rsp/).
# Re-runnable: everything it writes is rebuilt from src/ and repositories.txt (next to this script). See make_rsp.py for the rules.
set -euo pipefail
TOOLS=$(cd "$(dirname "$0")" && pwd)
export CORPUS=${CORPUS:-/work/corpus}
export REPOSITORIES=${REPOSITORIES:-$TOOLS/repositories.txt}
DRIVER=$CORPUS/bin/Diagnose
PACKAGES=${NUGET_PACKAGES:-$HOME/.nuget/packages}

# TorchSharp 0.107.0 and the few other packages make_rsp.py resolves (KNOWN_PACKAGES) in the NuGet cache: restore a
# throwaway project.
if [[ ! -f $PACKAGES/torchsharp/0.107.0/lib/net8.0/TorchSharp.dll || ! -d $PACKAGES/torchvision/0.107.0/lib \
      || ! -d $PACKAGES/xunit.assert/2.9.3/lib || ! -d $PACKAGES/newtonsoft.json/13.0.3/lib ]]; then
  tmp=$(mktemp -d)
  cat > "$tmp/restore.csproj" <<'XML'
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup>
  <ItemGroup>
    <PackageReference Include="TorchSharp" Version="0.107.0" />
    <PackageReference Include="TorchVision" Version="0.107.0" />
    <PackageReference Include="xunit" Version="2.9.3" />
    <PackageReference Include="Newtonsoft.Json" Version="13.0.3" />
  </ItemGroup>
</Project>
XML
  dotnet restore "$tmp/restore.csproj"
  rm -rf "$tmp"
fi

python3 "$TOOLS/make_rsp.py"

# The driver that emits the referenced projects' metadata (and runs the analyzers, see diagnose.sh).
dotnet build "$TOOLS/Diagnose/Diagnose.csproj" -c Release -o "$DRIVER" -nologo -v quiet
rm -rf "$CORPUS/refs"
dotnet "$DRIVER/Diagnose.dll" emit-refs "$CORPUS/deps/emit-order.txt"
echo "response files: $(ls "$CORPUS"/rsp/*.rsp | wc -l) in $CORPUS/rsp"
