"""Every label of the jury dashboards and of the committee's report, in French and English.

One table, one key per concept (a ranking column and the report's column of the same
field share their key, which is the field's name), one function: `t("key", lang,
**values)`. A key missing from the table is a bug, so `t` raises `KeyError` rather than
showing the key to a juror or a committee.
"""

from __future__ import annotations

DEFAULT_LANGUAGE = "fr"

TEXTS: dict[str, dict[str, str]] = {
    # Access
    "access_denied": {"fr": "Accès refusé", "en": "Access denied"},
    "access_denied_text": {
        "fr": "Ce lien n'est pas valide. Utilisez le lien personnel qui vous a été remis.",
        "en": "This link is not valid. Use the personal link you were given.",
    },
    "error": {"fr": "Cette page n'a pas pu être affichée.", "en": "This page could not be shown."},
    "not_found": {"fr": "Dossier introuvable.", "en": "Submission not found."},
    "too_many_sessions": {
        "fr": "Trop de sessions ouvertes, réessayez dans une minute",
        "en": "Too many open sessions, try again in a minute",
    },
    "too_many_sessions_text": {
        "fr": "Le serveur du jury a atteint son nombre de sessions. Fermez les onglets "
        "du tableau de bord que vous n'utilisez plus, puis rechargez cette page.",
        "en": "The jury's server has reached its number of sessions. Close the dashboard "
        "tabs you no longer use, then reload this page.",
    },
    "signed_in_as": {"fr": "Juré·e : {name}", "en": "Juror: {name}"},
    "example_notice": {"fr": "Avis", "en": "Notice"},
    # Call page
    "ranking": {"fr": "Classement des dossiers", "en": "Ranking of the submissions"},
    "n_submissions": {"fr": "{n} dossier(s)", "en": "{n} submission(s)"},
    "shown": {"fr": "affichés", "en": "shown"},
    "filter": {"fr": "filtrer", "en": "filter"},
    "sort_hint": {
        "fr": "Cliquez sur un en-tête pour trier ; tapez dans la ligne de filtres pour filtrer.",
        "en": "Click a header to sort; type in the filter row to filter.",
    },
    "submission": {"fr": "Dossier", "en": "Submission"},
    "team": {"fr": "Équipe", "en": "Team"},
    "template": {"fr": "Modèle", "en": "Template"},
    "status": {"fr": "Statut", "en": "Status"},
    "metric": {"fr": "Métrique", "en": "Metric"},
    "ai": {"fr": "IA", "en": "AI"},
    "baseline": {"fr": "Sans IA", "en": "No AI"},
    "gain_vs_baseline": {"fr": "Gain vs sans IA", "en": "Gain vs no AI"},
    # A figure's column: the unit it is shown in follows in brackets ("Énergie (mWh)").
    "energy_kwh": {"fr": "Énergie", "en": "Energy"},
    "wh_per_1000_predictions": {
        "fr": "Énergie / 1 000 prédictions",
        "en": "Energy / 1,000 predictions",
    },
    "co2e_g": {"fr": "Émissions", "en": "Emissions"},
    "water_l": {"fr": "Eau", "en": "Water"},
    "method": {"fr": "Méthode de mesure", "en": "Measurement method"},
    "reproduction": {"fr": "Reproductibilité", "en": "Reproducibility"},
    "jurors": {"fr": "Notes du jury", "en": "Jury scores"},
    "reviews": {"fr": "Évaluations faites / assignées", "en": "Reviews done / assigned"},
    "not_assigned": {"fr": "non assigné", "en": "not assigned"},
    "assigned_to_you": {"fr": "assigné à vous", "en": "assigned to you"},
    "my_reviews": {"fr": "Vos évaluations", "en": "Your reviews"},
    "my_reviews_of": {
        "fr": "dossier(s) assigné(s) noté(s)",
        "en": "assigned submission(s) scored",
    },
    "none_assigned": {
        "fr": "Aucun dossier ne vous est assigné pour l'instant.",
        "en": "No submission is assigned to you yet.",
    },
    "blind_notice": {
        "fr": "Évaluation à l'aveugle : les équipes, leurs organisations et leurs contacts "
        "ne sont pas montrés ; chaque dossier porte un numéro.",
        "en": "Blind review: teams, their organisations and their contacts are not shown; "
        "each submission has a number.",
    },
    "dossier_n": {"fr": "Dossier {n}", "en": "Submission {n}"},
    "jury_score": {"fr": "Note pondérée (/100)", "en": "Weighted score (/100)"},
    "not_comparable": {"fr": "non comparable", "en": "not comparable"},
    "not_measured": {"fr": "non mesuré", "en": "not measured"},
    "conflict": {"fr": "conflit d'intérêts", "en": "conflict of interest"},
    "open": {"fr": "ouvrir", "en": "open"},
    # Unknown figures, untagged phases, repeated runs and their intervals
    "phases_untagged": {
        "fr": "phases non étiquetées : énergie de l'IA inconnue",
        "en": "phases untagged: AI energy unknown",
    },
    "reason_no_ai_phase": {
        "fr": "aucune cellule étiquetée train ou inference",
        "en": "no cell tagged train or inference",
    },
    "reason_no_baseline_phase": {
        "fr": "aucune cellule étiquetée baseline",
        "en": "no cell tagged baseline",
    },
    "reason_no_phase": {
        "fr": "aucune cellule ne porte d'étiquette de phase",
        "en": "no cell carries a phase tag",
    },
    "reason_gain_not_positive": {
        "fr": "le gain n'est pas positif",
        "en": "the gain is not positive",
    },
    "reason_no_inference_phase": {
        "fr": "aucune cellule étiquetée inference",
        "en": "no cell tagged inference",
    },
    "reason_no_gain": {
        "fr": "aucun gain mesuré face à la solution sans IA",
        "en": "no gain over the baseline was scored",
    },
    "reason_predictions_not_positive": {
        "fr": "le nombre de prédictions n'est pas positif",
        "en": "the number of predictions is not positive",
    },
    "reason_no_predictions": {
        "fr": "nombre de prédictions non enregistré",
        "en": "number of predictions not recorded",
    },
    "one_run": {"fr": "1 exécution : pas d'intervalle", "en": "1 run: no interval"},
    "repeats": {"fr": "Exécutions", "en": "Runs"},
    "interval_note": {
        "fr": (
            "Énergie : médiane des exécutions répétées ; entre crochets, l'intervalle à 95 % "
            "(loi de Student) sur ces exécutions."
        ),
        "en": (
            "Energy: the median of the repeated runs; in brackets, the 95 % interval "
            "(Student's t) across those runs."
        ),
    },
    "unknown": {"fr": "inconnu", "en": "unknown"},
    "unknown_because": {"fr": "inconnu : {reason}", "en": "unknown: {reason}"},
    "labelled": {"fr": "{label} : {text}", "en": "{label}: {text}"},
    "energy_low": {"fr": "Énergie, borne basse à 95 %", "en": "Energy, 95 % low"},
    "energy_high": {"fr": "Énergie, borne haute à 95 %", "en": "Energy, 95 % high"},
    "not_distinguishable": {"fr": "indiscernable", "en": "not distinguishable"},
    "not_distinguishable_from": {
        "fr": "Intervalles d'énergie qui se chevauchent : indiscernable en énergie de {others}",
        "en": "Energy intervals overlap: not distinguishable on energy from {others}",
    },
    "overlaps": {"fr": "Indiscernable en énergie de", "en": "Not distinguishable on energy from"},
    "overlap_title": {
        "fr": "Dossiers indiscernables en énergie",
        "en": "Submissions not distinguishable on energy",
    },
    "overlap_note": {
        "fr": (
            "Les intervalles à 95 % de l'énergie totale de ces dossiers se chevauchent : "
            "l'énergie mesurée ne les départage pas."
        ),
        "en": (
            "The 95 % intervals of these submissions' total energy overlap: "
            "the measured energy does not tell them apart."
        ),
    },
    "notes": {"fr": "Remarques", "en": "Notes"},
    "ai_energy": {
        "fr": "IA (entraînement et inférence)",
        "en": "AI (training and inference)",
    },
    "baseline_energy": {"fr": "Solution sans IA", "en": "Non-AI solution"},
    # Pareto chart
    "pareto_title": {
        "fr": "Gain face à la solution sans IA, selon l'énergie",
        "en": "Gain over the non-AI solution, against energy",
    },
    "pareto_x": {"fr": "Énergie / 1 000 prédictions", "en": "Energy / 1,000 predictions"},
    "pareto_y": {"fr": "Gain vs sans IA (%)", "en": "Gain vs no AI (%)"},
    "pareto_points": {"fr": "Dossiers", "en": "Submissions"},
    "pareto_points_nc": {
        "fr": "Dossiers (énergie non comparable)",
        "en": "Submissions (energy not comparable)",
    },
    "pareto_front": {"fr": "Front de Pareto", "en": "Pareto front"},
    "pareto_baseline": {"fr": "Solution sans IA", "en": "Non-AI solution"},
    "pareto_apart": {
        "fr": "Hors du graphique (énergie par prédiction ou gain inconnus)",
        "en": "Off the chart (energy per prediction or gain unknown)",
    },
    "pareto_more": {"fr": "et {n} autre(s)", "en": "and {n} more"},
    # Statuses and verdicts
    "status_succeeded": {"fr": "réussi", "en": "succeeded"},
    "status_failed": {"fr": "échec", "en": "failed"},
    "status_timed_out": {"fr": "délai dépassé", "en": "timed out"},
    "status_kernel_died": {"fr": "noyau arrêté", "en": "kernel died"},
    "status_out_of_memory": {"fr": "mémoire dépassée", "en": "out of memory"},
    "status_incomplete": {"fr": "incomplet", "en": "incomplete"},
    "status_running": {"fr": "en cours", "en": "running"},
    "status_not_run": {"fr": "non exécuté", "en": "not run"},
    "status_error": {"fr": "erreur de l'exécuteur", "en": "runner fault"},
    "status_abandoned": {"fr": "abandonné (exécuteur arrêté)", "en": "abandoned (runner stopped)"},
    "runner_faults": {
        "fr": "Erreur de l'exécuteur, relancée au prochain lot",
        "en": "Runner fault, rerun by the next batch",
    },
    "reproduced": {"fr": "reproduit", "en": "reproduced"},
    "diverged": {"fr": "divergent ({metrics})", "en": "diverged ({metrics})"},
    "verdict_reproduced": {"fr": "reproduit", "en": "reproduced"},
    "verdict_diverged": {"fr": "divergent", "en": "diverged"},
    "not_reproduced_yet": {"fr": "non vérifié", "en": "not checked"},
    "disagrees": {"fr": "Écart avec le notebook", "en": "Differs from notebook"},
    "disagrees_note": {
        "fr": "les chiffres du notebook diffèrent du recalcul",
        "en": "the notebook's own numbers differ from the recomputation",
    },
    # Submission page
    "back": {"fr": "← Retour au classement", "en": "← Back to the ranking"},
    "organisation": {"fr": "Organisation", "en": "Organisation"},
    "notebook_template": {"fr": "Modèle de notebook", "en": "Notebook template"},
    "questionnaire": {"fr": "Questionnaire", "en": "Questionnaire"},
    "yes": {"fr": "Oui", "en": "Yes"},
    "no": {"fr": "Non", "en": "No"},
    "no_answer": {"fr": "non renseigné", "en": "not answered"},
    "ai_vs_baseline": {
        "fr": "L'IA face à la solution sans IA",
        "en": "The AI against the non-AI solution",
    },
    "no_run": {"fr": "Aucune exécution enregistrée.", "en": "No recorded run."},
    "predictions_title": {
        "fr": "Prédictions et valeurs réelles",
        "en": "Predictions and true values",
    },
    "truth": {"fr": "Réel", "en": "Truth"},
    "row": {"fr": "Observation", "en": "Observation"},
    "energy": {"fr": "Énergie", "en": "Energy"},
    "energy_title": {"fr": "Énergie par phase", "en": "Energy per phase"},
    "phase": {"fr": "Phase", "en": "Phase"},
    "phase_data": {"fr": "données", "en": "data"},
    "phase_train": {"fr": "entraînement", "en": "training"},
    "phase_inference": {"fr": "inférence", "en": "inference"},
    "phase_baseline": {"fr": "solution sans IA", "en": "non-AI solution"},
    "phase_evaluate": {"fr": "évaluation", "en": "evaluation"},
    "phase_untagged": {"fr": "non étiqueté", "en": "untagged"},
    "total": {"fr": "Total", "en": "Total"},
    "measured_with": {"fr": "Méthode de mesure : {method}", "en": "Measurement method: {method}"},
    "history": {"fr": "Historique des exécutions", "en": "Run history"},
    "run_id": {"fr": "Exécution", "en": "Run"},
    "started": {"fr": "Début", "en": "Started"},
    "duration": {"fr": "Durée (s)", "en": "Duration (s)"},
    "message": {"fr": "Message", "en": "Message"},
    "reproducibility": {"fr": "Reproductibilité", "en": "Reproducibility"},
    "outputs": {
        "fr": "Résultats du notebook du porteur (lecture seule)",
        "en": "The applicant's notebook outputs (read-only)",
    },
    "outputs_missing": {
        "fr": "Le notebook exécuté n'est pas disponible.",
        "en": "The executed notebook is not available.",
    },
    "output_withheld": {
        "fr": "[contenu interactif non affiché : {kind}]",
        "en": "[interactive content not shown: {kind}]",
    },
    "cell": {"fr": "Cellule {n}", "en": "Cell {n}"},
    # Scoring
    "scoring": {"fr": "Votre notation", "en": "Your scores"},
    "save": {"fr": "Enregistrer", "en": "Save"},
    "saved": {
        "fr": "Enregistré le {time} — note pondérée {total} / 100",
        "en": "Saved on {time} — weighted score {total} / 100",
    },
    "save_failed": {"fr": "Non enregistré : {reason}", "en": "Not saved: {reason}"},
    "not_scored": {"fr": "critère non noté : {label}", "en": "criterion not scored: {label}"},
    "conflict_notice": {
        "fr": (
            "Vous avez déclaré un conflit d'intérêts avec ce dossier : vous ne pouvez pas le noter."
        ),
        "en": "You declared a conflict of interest with this submission: you cannot score it.",
    },
    "private_note": {"fr": "Note privée pour le jury", "en": "Private note for the jury"},
    "private_note_hint": {
        "fr": "Lue par le jury et le comité seulement ; jamais envoyée à l'équipe.",
        "en": "Read by the jury and the committee only; never sent to the team.",
    },
    "team_message": {"fr": "Message à l'équipe", "en": "Message to the team"},
    "team_message_hint": {
        "fr": "Facultatif ; envoyé à l'équipe dans sa lettre de retour.",
        "en": "Optional; sent to the team in its feedback letter.",
    },
    "your_history": {"fr": "Vos enregistrements précédents", "en": "Your earlier saves"},
    "saved_at": {"fr": "Enregistré le", "en": "Saved on"},
    "weighted_total": {"fr": "Note pondérée", "en": "Weighted score"},
    # The rapporteur's synthesis
    "synthesis": {"fr": "Synthèse du rapporteur", "en": "The rapporteur's synthesis"},
    "synthesis_text": {"fr": "Synthèse", "en": "Synthesis"},
    "proposed_decision": {"fr": "Décision proposée", "en": "Proposed decision"},
    "synthesis_waiting": {
        "fr": "Vous êtes rapporteur de ce dossier : le formulaire de synthèse s'ouvrira "
        "quand {waiting}.",
        "en": "You are this submission's rapporteur: the synthesis form opens once {waiting}.",
    },
    "waiting_assigned": {
        "fr": "les {assigned} évaluations attendues seront enregistrées (il en manque {missing})",
        "en": "the {assigned} assigned reviews are all in ({missing} missing)",
    },
    "waiting_other": {
        "fr": "un autre juré aura enregistré son évaluation",
        "en": "another juror has saved a review",
    },
    "synthesis_saved": {"fr": "Synthèse enregistrée le {time}", "en": "Synthesis saved on {time}"},
    "rapporteur": {"fr": "Rapporteur", "en": "Rapporteur"},
    "no_synthesis": {"fr": "pas encore de synthèse", "en": "no synthesis yet"},
    "spread_total": {
        "fr": "Écart entre jurés (note pondérée, max-min)",
        "en": "Spread between jurors (weighted score, max-min)",
    },
    "criteria_disagree": {"fr": "Critères en désaccord", "en": "Criteria in disagreement"},
    # Dossier states, in words
    "state_draft": {"fr": "brouillon", "en": "draft"},
    "state_submitted": {"fr": "déposé", "en": "handed in"},
    "state_in_review": {"fr": "en instruction", "en": "under review"},
    "state_accepted": {"fr": "retenu", "en": "accepted"},
    "state_rejected": {"fr": "non retenu", "en": "rejected"},
    "state_dismissed": {"fr": "irrecevable", "en": "dismissed"},
    # Feedback letters, for the teams
    "letter_title": {"fr": "Retour sur votre dossier", "en": "Feedback on your submission"},
    "letter_intro": {
        "fr": "Voici les résultats mesurés de votre notebook et les messages du jury.",
        "en": "Here are your notebook's measured results and the jury's messages.",
    },
    "decision": {"fr": "Décision", "en": "Decision"},
    "decision_on": {"fr": "{state}, le {date}", "en": "{state}, on {date}"},
    "no_decision": {
        "fr": "Pas encore de décision (état du dossier : {state}).",
        "en": "No decision yet (dossier state: {state}).",
    },
    "measured_results": {"fr": "Résultats mesurés", "en": "Measured results"},
    "energy_uncertainty": {
        "fr": "incertitude de la méthode : ±{percent} %",
        "en": "the method's uncertainty: ±{percent} %",
    },
    "jury_messages": {"fr": "Messages du jury", "en": "The jury's messages"},
    "no_messages": {"fr": "Aucun message du jury.", "en": "No message from the jury."},
    "a_juror": {"fr": "Juré·e {n}", "en": "Juror {n}"},
    # Committee reports (xlsx, HTML, CSV): the other columns, sheets, sections
    "rank": {"fr": "Rang", "en": "Rank"},
    "state": {"fr": "État du dossier", "en": "Dossier state"},
    "comparable": {"fr": "Comparable", "en": "Comparable"},
    "comparable_reason": {"fr": "Pourquoi non comparable", "en": "Why not comparable"},
    "value": {"fr": "Valeur", "en": "Value"},
    "machine": {"fr": "Machine", "en": "Machine"},
    "verdict": {"fr": "Verdict", "en": "Verdict"},
    "reference_run": {"fr": "Exécution de référence", "en": "Reference run"},
    "runs": {"fr": "Nouvelles exécutions", "en": "New runs"},
    "differences": {"fr": "Écarts", "en": "Differences"},
    "criterion": {"fr": "Critère", "en": "Criterion"},
    "weight": {"fr": "Poids", "en": "Weight"},
    "mean": {"fr": "Moyenne", "en": "Mean"},
    "median": {"fr": "Médiane", "en": "Median"},
    "spread": {"fr": "Écart max-min", "en": "Spread (max-min)"},
    "disagreement": {"fr": "Désaccord", "en": "Disagreement"},
    "at": {"fr": "Date", "en": "When"},
    "actor": {"fr": "Par", "en": "By"},
    "from": {"fr": "De", "en": "From"},
    "to": {"fr": "Vers", "en": "To"},
    "reason": {"fr": "Motif", "en": "Reason"},
    "sheet_ranking": {"fr": "Classement", "en": "Ranking"},
    "sheet_metrics": {"fr": "Métriques", "en": "Metrics"},
    "sheet_energy": {"fr": "Énergie", "en": "Energy"},
    "sheet_reproducibility": {"fr": "Reproductibilité", "en": "Reproducibility"},
    "sheet_jury": {"fr": "Jury", "en": "Jury"},
    "sheet_states": {"fr": "États", "en": "States"},
    "sheet_faults": {"fr": "Erreurs d'exécution", "en": "Runner faults"},
    "sheet_audit": {"fr": "Journal", "en": "Audit log"},
    "sheet_assignments": {"fr": "Affectations", "en": "Assignments"},
    "sheet_syntheses": {"fr": "Synthèses", "en": "Syntheses"},
    "sheet_synthesis_history": {"fr": "Historique des synthèses", "en": "Synthesis history"},
    "sheet_messages": {"fr": "Notes et messages", "en": "Notes and messages"},
    "assigned_jurors": {"fr": "Jurés affectés", "en": "Assigned jurors"},
    "juror": {"fr": "Juré·e", "en": "Juror"},
    "text": {"fr": "Texte", "en": "Text"},
    "title": {"fr": "Titre du projet", "en": "Project title"},
    "report_title": {
        "fr": "Rapport au comité de financement",
        "en": "Report to the funding committee",
    },
    "generated_on": {"fr": "Généré le", "en": "Generated on"},
    "no_rows": {"fr": "Rien à montrer.", "en": "Nothing to show."},
}


def t(key: str, lang: str = DEFAULT_LANGUAGE, **values: object) -> str:
    """The label `key` in `lang` (French when `lang` is unknown), with `values` filled in."""
    entry = TEXTS[key]
    text = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    return text.format(**values) if values else text


# The meter's reasons for an unknown figure (`runner.metering.unknown_figures`, stored in
# English), by how they start once lower-cased and without "is ", and their labels' keys.
# A reason not listed here is shown as stored.
REASONS = {
    "no cell tagged train or inference": "reason_no_ai_phase",
    "the ai energy unknown": "reason_no_ai_phase",
    "no cell tagged inference": "reason_no_inference_phase",
    "no cell tagged baseline": "reason_no_baseline_phase",
    "no cell carries a phase tag": "reason_no_phase",
    "the gain over the baseline not positive": "reason_gain_not_positive",
    "the gain not positive": "reason_gain_not_positive",
    "no gain over the baseline was scored": "reason_no_gain",
    "the notebook recorded no n_predictions": "reason_no_predictions",
    "n_predictions not positive": "reason_predictions_not_positive",
}


def reason_label(reason: str | None, lang: str = DEFAULT_LANGUAGE) -> str | None:
    """The meter's reason for an unknown figure in `lang` (as stored when not known here)."""
    if not reason:
        return None
    plain = " ".join(reason.strip().rstrip(".").lower().replace(" is ", " ").split())
    key = next((k for start, k in REASONS.items() if plain.startswith(start)), None)
    return t(key, lang) if key else reason


def status_label(status: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """A run status in words; an unknown status is shown as it is."""
    key = f"status_{status}"
    return t(key, lang) if key in TEXTS else status


def state_label(state: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """A dossier state in words; an unknown state is shown as it is."""
    key = f"state_{state}"
    return t(key, lang) if key in TEXTS else state
