#!/usr/bin/env bash
# Create a workflow, start a run, poll until it ends, check node states; against $AOB_API_URL with $AOB_API_KEY.
set -euo pipefail
: "${AOB_API_URL:?set AOB_API_URL}" "${AOB_API_KEY:?set AOB_API_KEY}"

api() {  # api METHOD PATH [JSON]: prints the body, fails on a 4xx/5xx with the error line
  local method=$1 path=$2 body=${3:-}
  local out status
  out=$(mktemp)
  status=$(curl -sS -o "$out" -w '%{http_code}' -X "$method" "$AOB_API_URL$path" \
    -H "Authorization: Bearer $AOB_API_KEY" -H 'Content-Type: application/json' ${body:+--data "$body"})
  if [[ $status -ge 400 ]]; then
    echo "FAIL: $method $path -> $status $(cat "$out")" >&2
    rm -f "$out"
    return 1
  fi
  cat "$out"
  rm -f "$out"
}

name="shell/test-run-$$-$RANDOM"
definition=$(jq -n '{
  inputs: {type: "object", properties: {who: {type: "string"}}, required: ["who"]},
  nodes: [
    {id: "greet", type: "transform", config: {output: {msg: "hello {{ inputs.who }}"}}},
    {id: "done", type: "noop"}
  ],
  edges: [{from: "greet", to: "done"}]
}')
workflow=$(api POST /api/v1/workflows "$(jq -n --arg n "$name" --argjson d "$definition" '{name: $n, definition: $d}')")
workflow_id=$(jq -r .id <<<"$workflow")
[[ $(jq -r .version <<<"$workflow") == 1 ]] || { echo "FAIL: expected version 1: $workflow" >&2; exit 1; }

run=$(api POST /api/v1/runs "$(jq -n --arg w "$workflow_id" '{workflow_id: $w, inputs: {who: "shell"}}')")
run_id=$(jq -r .id <<<"$run")
echo "started run $run_id of $name"

status=queued
for _ in $(seq 1 100); do
  run=$(api GET "/api/v1/runs/$run_id")
  status=$(jq -r .status <<<"$run")
  case $status in succeeded|failed|cancelled|timed_out) break ;; esac
  sleep 0.1
done

[[ $status == succeeded ]] || { echo "FAIL: run ended $status: $run" >&2; exit 1; }
[[ $(jq -r '.nodes.greet.status' <<<"$run") == succeeded ]] || { echo "FAIL: greet: $run" >&2; exit 1; }
[[ $(jq -r '.nodes.done.status' <<<"$run") == succeeded ]] || { echo "FAIL: done: $run" >&2; exit 1; }
[[ $(jq -r '.nodes.greet.output.msg' <<<"$run") == "hello shell" ]] || { echo "FAIL: output: $run" >&2; exit 1; }
echo "PASS test_run.sh: run $run_id succeeded with greet and done"
