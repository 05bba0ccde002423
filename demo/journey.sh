#!/usr/bin/env bash
# A call's whole journey, as its users would go through it, in build/journey/:
# the funder makes a workspace from the installed package and publishes the call's kit;
# two teams start from the kit (one from a template, one with its own notebook), run
# their notebooks, answer the questionnaire and hand their dossiers in; the funder
# receives both bundles and batch-runs them; two jurors are assigned a dossier each and
# score it; the committee decides and prints its report; each team gets its letter.
set -euo pipefail
WB=${1:?usage: journey.sh PATH-TO-workbench}
WB=$(cd "$(dirname "$WB")" && pwd)/$(basename "$WB")  # the journey moves between folders
PYTHON=$(dirname "$WB")/python
here=$(cd "$(dirname "$0")/.." && pwd)
out=${JOURNEY_OUT:-$here/build/journey}  # where the journey happens
rm -rf "$out" && mkdir -p "$out"
cd "$out"
step() { printf '\n== %s\n' "$*"; }

step "Funder: a workspace, and the kit of the call diat"
"$WB" init funder
(cd funder && "$WB" kit diat --out "$out/diat-kit.zip")

# answer SUBMISSION-FOLDER: fill the questionnaire the way a team would in its editor.
answer() {
    "$PYTHON" - "$1/submission.yaml" <<'PY'
import sys, yaml
path = sys.argv[1]
doc = yaml.safe_load(open(path, encoding="utf-8"))
doc["contact"] = "projet@collectivite.example"
doc["answers"] = {
    "data-open": True,
    "replication": "Toute régie disposant de relevés journaliers de production.",
    "hosting": "on-premises",
}
open(path, "w", encoding="utf-8").write(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
PY
}

step "Team 1: from the kit, the water-demand template"
"$WB" init team-clairval --kit diat-kit.zip
(
    cd team-clairval
    "$WB" new diat --template water-demand-forecast --id eau-clairval \
        --team "Régie des eaux de Clairval (fictive)" --title "Prévoir la demande en eau à 7 jours"
    "$WB" run diat/eau-clairval --isolation process
    answer submissions/diat/eau-clairval
    "$WB" pack diat/eau-clairval --out "$out/eau-clairval.zip"
)

step "Team 2: from the kit, its own notebook as it is"
"$WB" init team-val-d-ambre --kit diat-kit.zip
(
    cd team-val-d-ambre
    cp "$here/submissions/feder-ami-hdf/demandes-usagers-val-d-ambre/notebook.ipynb" ours.ipynb
    "$WB" new diat --template custom --notebook ours.ipynb --id usagers-val-d-ambre \
        --team "Mission numérique du Val d'Ambre (fictive)" \
        --title "Repérer les demandes urgentes des usagers"
    answer submissions/diat/usagers-val-d-ambre
    "$WB" pack diat/usagers-val-d-ambre --out "$out/usagers-val-d-ambre.zip"
)

step "Funder: receive both bundles, run them on the reference machine, open the jury"
cd funder
"$WB" receive "$out/eau-clairval.zip" "$out/usagers-val-d-ambre.zip"
"$WB" batch diat
"$WB" results diat
"$WB" jury add diat "Juré A" >juror-a.link
"$WB" jury add diat "Juré B" >juror-b.link
"$WB" jury assign diat --per-submission 1

step "Jurors: each scores the dossier assigned to them (what Save does on their page)"
"$PYTHON" - juror-a.link juror-b.link <<'PY'
import sys
from urllib.parse import parse_qs, urlparse

from workbench.jury import authenticate, save_score
from workbench.store import open_store
from workbench.workspace import Workspace

workspace = Workspace.from_env()
call = workspace.call("diat")
with open_store(workspace.db_url) as store:
    for path in sys.argv[1:]:
        token = parse_qs(urlparse(open(path, encoding="utf-8").read().strip()).query)["token"][0]
        juror = authenticate(store, call.id, token)
        for key in sorted(store.juror_assignments(call.id, juror.id)):
            values = {criterion.id: 4 for criterion in call.rubric}
            note = "Note privée : à comparer avec le dossier voisin."
            message = "Mesures claires ; documentez la source des données."
            save_score(store, call, token, key, values, comment=note, message=message)
            print(f"{juror.name} scored {key}")
PY
"$WB" jury list diat
"$WB" jury remind diat

step "Committee: decisions and the report; teams: their letters"
"$WB" decide diat/eau-clairval in_review --reason "jury complete"
"$WB" decide diat/eau-clairval accepted --reason "fundable"
"$WB" report diat --out "$out/diat-report.html"
"$WB" feedback diat --out "$out/letters"
printf '\nThe journey is in %s: the kit, the bundles, the receipts, the report and the letters.\n' "$out"
