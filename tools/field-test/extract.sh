#!/usr/bin/env bash
# Extracts each repository listed in repositories.txt (next to this script) ("owner/name commit") from its fetched
# snapshot (/work/.mirror/owner+name/repo, brought by the search tool's `fetch`) into /work/corpus/src/owner+name.
# Blobs the snapshot lacks (files of 4 MiB and more, LFS) are skipped.
set -euo pipefail
CORPUS=${CORPUS:-/work/corpus}
REPOSITORIES=${REPOSITORIES:-$(cd "$(dirname "$0")" && pwd)/repositories.txt}
MIRROR=${MIRROR:-/work/.mirror}
while read -r repo commit; do
  [[ -z "$repo" || "$repo" == \#* ]] && continue
  name=${repo/\//+}
  git_dir="$MIRROR/$name/repo"
  dest="$CORPUS/src/$name"
  if [[ ! -d "$git_dir" ]]; then echo "missing snapshot: $repo (fetch github:$repo first)" >&2; continue; fi
  rm -rf "$dest"; mkdir -p "$dest"
  # Pathspecs excluding the blobs that are not in the snapshot.
  mapfile -t missing < <(git --git-dir="$git_dir" ls-tree -r --full-tree "$commit" \
      | awk '$2=="blob"{print $3}' | git --git-dir="$git_dir" cat-file --batch-check='%(objectname) %(objecttype)' \
      | awk '$2=="missing"{print $1}' | sort -u)
  excludes=()
  if (( ${#missing[@]} )); then
    declare -A miss=(); for m in "${missing[@]}"; do miss[$m]=1; done
    while IFS=$'\t' read -r meta path; do
      sha=${meta##* }
      [[ -n "${miss[$sha]:-}" ]] && excludes+=(":(exclude,literal)$path")
    done < <(git --git-dir="$git_dir" ls-tree -r --full-tree "$commit")
    unset miss
  fi
  git --git-dir="$git_dir" archive "$commit" -- . "${excludes[@]}" | tar -x -C "$dest"
  echo "$repo $commit: $(find "$dest" -name '*.cs' | wc -l) .cs files, ${#excludes[@]} absent blobs skipped"
done < "$REPOSITORIES"
