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
    "wh_per_1000_predictions": {"fr": "Wh / 1 000 prédictions", "en": "Wh / 1,000 predictions"},
    "co2e_g": {"fr": "gCO2e", "en": "gCO2e"},
    "method": {"fr": "Méthode de mesure", "en": "Measurement method"},
    "reproduction": {"fr": "Reproductibilité", "en": "Reproducibility"},
    "jurors": {"fr": "Notes du jury", "en": "Jury scores"},
    "jury_score": {"fr": "Note pondérée (/100)", "en": "Weighted score (/100)"},
    "not_comparable": {"fr": "non comparable", "en": "not comparable"},
    "not_measured": {"fr": "non mesuré", "en": "not measured"},
    "conflict": {"fr": "conflit d'intérêts", "en": "conflict of interest"},
    "open": {"fr": "ouvrir", "en": "open"},
    # Pareto chart
    "pareto_title": {
        "fr": "Gain face à la solution sans IA, selon l'énergie",
        "en": "Gain over the non-AI solution, against energy",
    },
    "pareto_x": {"fr": "Énergie (Wh / 1 000 prédictions)", "en": "Energy (Wh / 1,000 predictions)"},
    "pareto_y": {"fr": "Gain vs sans IA (%)", "en": "Gain vs no AI (%)"},
    "pareto_points": {"fr": "Dossiers", "en": "Submissions"},
    "pareto_points_nc": {
        "fr": "Dossiers (énergie non comparable)",
        "en": "Submissions (energy not comparable)",
    },
    "pareto_front": {"fr": "Front de Pareto", "en": "Pareto front"},
    "pareto_baseline": {"fr": "Solution sans IA", "en": "Non-AI solution"},
    # Statuses and verdicts
    "status_succeeded": {"fr": "réussi", "en": "succeeded"},
    "status_failed": {"fr": "échec", "en": "failed"},
    "status_timed_out": {"fr": "délai dépassé", "en": "timed out"},
    "status_kernel_died": {"fr": "noyau arrêté", "en": "kernel died"},
    "status_incomplete": {"fr": "incomplet", "en": "incomplete"},
    "status_running": {"fr": "en cours", "en": "running"},
    "status_not_run": {"fr": "non exécuté", "en": "not run"},
    "status_error": {"fr": "erreur de l'exécuteur", "en": "runner fault"},
    "runner_faults": {
        "fr": "Erreur de l'exécuteur, relancée au prochain lot",
        "en": "Runner fault, rerun by the next batch",
    },
    "reproduced": {"fr": "reproduit", "en": "reproduced"},
    "diverged": {"fr": "divergent ({metrics})", "en": "diverged ({metrics})"},
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
    "yes": {"fr": "oui", "en": "yes"},
    "no": {"fr": "non", "en": "no"},
    "no_answer": {"fr": "sans réponse", "en": "no answer"},
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
    "energy_title": {"fr": "Énergie par phase (Wh)", "en": "Energy per phase (Wh)"},
    "phase": {"fr": "Phase", "en": "Phase"},
    "phase_data": {"fr": "données", "en": "data"},
    "phase_train": {"fr": "entraînement", "en": "training"},
    "phase_inference": {"fr": "inférence", "en": "inference"},
    "phase_baseline": {"fr": "solution sans IA", "en": "non-AI solution"},
    "phase_evaluate": {"fr": "évaluation", "en": "evaluation"},
    "phase_untagged": {"fr": "non étiqueté", "en": "untagged"},
    "total_wh": {"fr": "Total : {wh} Wh, {co2} gCO2e", "en": "Total: {wh} Wh, {co2} gCO2e"},
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
    "comment": {"fr": "Commentaire", "en": "Comment"},
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
    "your_history": {"fr": "Vos enregistrements précédents", "en": "Your earlier saves"},
    "saved_at": {"fr": "Enregistré le", "en": "Saved on"},
    "weighted_total": {"fr": "Note pondérée", "en": "Weighted score"},
    # Committee reports (xlsx, HTML, CSV): the other columns, sheets, sections
    "rank": {"fr": "Rang", "en": "Rank"},
    "state": {"fr": "État du dossier", "en": "Dossier state"},
    "energy_kwh": {"fr": "Énergie (kWh)", "en": "Energy (kWh)"},
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


def status_label(status: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """A run status in words; an unknown status is shown as it is."""
    key = f"status_{status}"
    return t(key, lang) if key in TEXTS else status
