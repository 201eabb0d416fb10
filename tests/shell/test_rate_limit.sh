#!/usr/bin/env bash
# Burst requests until a 429, then check its Retry-After and X-RateLimit-* headers and error body.
set -euo pipefail
: "${AOB_API_URL:?set AOB_API_URL}" "${AOB_API_KEY:?set AOB_API_KEY}"
max_requests=${AOB_BURST_MAX:-3000}

# A fresh editor key has its own per-key budget, so the burst does not starve other clients' keys.
key=$(curl -sS -X POST "$AOB_API_URL/api/v1/api-keys" -H "Authorization: Bearer $AOB_API_KEY" \
  -H 'Content-Type: application/json' --data '{"name": "shell-burst", "role": "editor"}' | jq -r .key)
[[ $key == aob_* ]] || { echo "FAIL: could not create a key" >&2; exit 1; }

headers=$(mktemp)
body=$(mktemp)
trap 'rm -f "$headers" "$body"' EXIT
for i in $(seq 1 "$max_requests"); do
  status=$(curl -sS -D "$headers" -o "$body" -w '%{http_code}' "$AOB_API_URL/api/v1/me" -H "Authorization: Bearer $key")
  if [[ $status == 429 ]]; then
    break
  fi
  [[ $status == 200 ]] || { echo "FAIL: request $i got $status: $(cat "$body")" >&2; exit 1; }
done
[[ $status == 429 ]] || { echo "FAIL: no 429 within $max_requests requests" >&2; exit 1; }

header() { grep -i "^$1:" "$headers" | head -1 | cut -d: -f2- | tr -d ' \r'; }
retry_after=$(header Retry-After)
limit=$(header X-RateLimit-Limit)
remaining=$(header X-RateLimit-Remaining)
reset=$(header X-RateLimit-Reset)
[[ $retry_after =~ ^[0-9]+$ && $retry_after -ge 1 ]] || { echo "FAIL: Retry-After '$retry_after'" >&2; exit 1; }
[[ $limit =~ ^[0-9]+$ ]] || { echo "FAIL: X-RateLimit-Limit '$limit'" >&2; exit 1; }
[[ $remaining == 0 ]] || { echo "FAIL: X-RateLimit-Remaining '$remaining'" >&2; exit 1; }
[[ $reset =~ ^[0-9]+$ ]] || { echo "FAIL: X-RateLimit-Reset '$reset'" >&2; exit 1; }
[[ $(jq -r .error.code "$body") == rate_limited ]] || { echo "FAIL: body $(cat "$body")" >&2; exit 1; }
echo "PASS test_rate_limit.sh: 429 after $i requests (limit $limit, retry after ${retry_after}s)"
