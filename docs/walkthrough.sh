#!/usr/bin/env bash
# A card's life in the demo region, step by step (run `make run` in another terminal first).
# Every command is also in the README; this file runs them all: bash docs/walkthrough.sh
set -euo pipefail
API=${API:-http://127.0.0.1:8000}
post() { curl -sS -X POST -H "Authorization: Bearer $1" -H 'Content-Type: application/json' "$API$2" -d "${3:-{\}}"; }
get()  { curl -sS -H "Authorization: Bearer $1" "$API$2"; }
pick() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# 1. The service point registers a flexible employee (ID-1: the number is checked).
PERSON=$(post demo-sp01 /persons '{"id_number": "441900199103071235", "name": "陈小明",
  "status": "unemployed", "phone": "13912345678", "insured_since": "2025-01-01"}' | pick '["id"]')
echo "person $PERSON"

# 2. She chooses a bank and gets her unique application registration form (A-3, A-4, B-3).
FORM=$(post demo-sp01 /applications "{\"person_id\": $PERSON, \"bank_code\": \"ICBC\"}" | pick '["id"]')
curl -sS -o form-barcode.svg -H "Authorization: Bearer demo-sp01" "$API/applications/$FORM/barcode.svg"

# 3. She authorises the ID-card photo (C-3), returns the form, the service point accepts it.
post demo-sp01 /applications/$FORM/corrections '{"photo_source": "id_card_authorisation"}' > /dev/null
post demo-sp01 /applications/$FORM/return > /dev/null
post demo-sp01 /applications/$FORM/check '{"decision": "accept"}' | pick '["state"]'
CARD=$(get demo-center "/cards?person_id=$PERSON" | pick '["items"][0]["id"]')
get demo-center /cards/$CARD | pick '["ready_on"]'          # 30 working days later

# 4. The bank reports the produced card (card number, chip serial, bank card number).
post demo-icbc /cards/$CARD/production '{"card_number": "A10000001", "serial": "SN100000001",
  "bank_card_number": "6222021000000000017", "outlet_code": "OUT-ICBC"}' | pick '["card"]["state"]'

# 5. Too early to pick it up: a 409 that names the ready date.
post demo-out-icbc /cards/$CARD/pickups '{"by": "holder"}' | pick '["detail"]'

# 6. Move the demo clock 45 days on, then pick up and activate at the outlet (V-1, V-2).
post demo-center /demo/clock '{"days": 45}' | pick '["today"]'
post demo-out-icbc /cards/$CARD/pickups '{"by": "holder", "activate": true, "medical_password": "482913"}' | pick '["card"]["state"]'
post demo-hosp01 /card-checks '{"card_number": "A10000001"}' | pick '["usable"]'

# 7. She loses it and reports it by phone to the bank: an oral report (L-1).
post demo-out-icbc /cards/$CARD/loss-reports '{"kind": "oral", "channel": "bank_phone"}' \
  | pick '["card"]["oral_loss_lapses_at"]'

# 8. Six days later no written report has followed: the oral report lapses, the card resumes.
post demo-center /demo/clock '{"days": 6}' > /dev/null
post demo-center /sweeps | pick '["applied"]["oral_report_lapsed"]'
get demo-center /cards/$CARD | pick '["state"]'

# 9. Lost for real: a written report at the outlet (L-2, free), then a replacement (R-1, F-1).
post demo-out-icbc /cards/$CARD/loss-reports '{"kind": "written"}' | pick '["card"]["written_report_no"]'
post demo-out-icbc /cards/$CARD/replacements | pick '["fee"]'

# 10. The old card is dead for good, everywhere.
post demo-out-icbc /cards/$CARD/activations '{"channel": "outlet"}' | pick '["detail"]'
post demo-pharm01 /card-checks '{"card_number": "A10000001"}' | pick '["reason"]'
get demo-center /cards/$CARD/transitions \
  | python3 -c "import json,sys; [print(t['from_state'], '->', t['to_state'], t['channel']) for t in json.load(sys.stdin)]"
