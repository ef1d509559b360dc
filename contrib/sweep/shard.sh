#!/usr/bin/env bash
# Run this machine's shard of a sweep, whichever engine started it:
#   GitLab CI `parallel: N`   CI_NODE_INDEX (1..N) and CI_NODE_TOTAL
#   AWS Batch array job       AWS_BATCH_JOB_ARRAY_INDEX (0..N-1) and SHARDS (the array size)
#   anything else             SHARD (0..N-1) and SHARDS
# then writes OUT/shard-I/shard.json for `scalecast sweep merge OUT/shard-*`.
#
#   contrib/sweep/shard.sh OUT scenario.toml --grid IdleCount=0,2,5 --grid IdleTime=600,1800 ...
set -euo pipefail
out=${1:?usage: shard.sh OUT SCENARIO [sweep arguments...]}
shift
if [ -n "${CI_NODE_INDEX:-}" ]; then
  index=$((CI_NODE_INDEX - 1)); total=${CI_NODE_TOTAL:?CI_NODE_TOTAL is not set}
elif [ -n "${AWS_BATCH_JOB_ARRAY_INDEX:-}" ]; then
  index=$AWS_BATCH_JOB_ARRAY_INDEX; total=${SHARDS:?set SHARDS to the array size}
else
  index=${SHARD:?set SHARD and SHARDS (or run under GitLab parallel or an AWS Batch array)}
  total=${SHARDS:?set SHARDS}
fi
exec "${SCALECAST:-scalecast}" sweep "$@" --quiet --shard "$index/$total" --out "$out/shard-$index"
