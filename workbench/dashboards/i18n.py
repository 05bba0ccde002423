"""Every label of the jury dashboards, in French (the default) and English.

One table, one function: `t("key", lang, **values)`. A key missing from the table is a
bug, so `t` raises `KeyError` rather than showing the key to a juror.
"""

from __future__ import annotations

LANGUAGES = ("fr", "en")
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
    "col_submission": {"fr": "Dossier", "en": "Submission"},
    "col_team": {"fr": "Équipe", "en": "Team"},
    "col_template": {"fr": "Modèle", "en": "Template"},
    "col_status": {"fr": "Statut", "en": "Status"},
    "col_metric": {"fr": "Métrique", "en": "Metric"},
    "col_ai": {"fr": "IA", "en": "AI"},
    "col_baseline": {"fr": "Sans IA", "en": "No AI"},
    "col_gain": {"fr": "Gain vs sans IA", "en": "Gain vs no AI"},
    "col_wh_1000": {"fr": "Wh / 1 000 prédictions", "en": "Wh / 1,000 predictions"},
    "col_co2": {"fr": "gCO2e", "en": "gCO2e"},
    "col_method": {"fr": "Méthode de mesure", "en": "Measurement method"},
    "col_reproduction": {"fr": "Reproductibilité", "en": "Reproducibility"},
    "col_jurors": {"fr": "Notes du jury", "en": "Jury scores"},
    "col_jury_score": {"fr": "Note pondérée (/100)", "en": "Weighted score (/100)"},
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
    "reproduced": {"fr": "reproduit", "en": "reproduced"},
    "diverged": {"fr": "divergent ({metrics})", "en": "diverged ({metrics})"},
    "not_reproduced_yet": {"fr": "non vérifié", "en": "not checked"},
    "disagrees": {
        "fr": "les chiffres du notebook diffèrent du recalcul",
        "en": "the notebook's own numbers differ from the recomputation",
    },
    # Submission page
    "back": {"fr": "← Retour au classement", "en": "← Back to the ranking"},
    "organisation": {"fr": "Organisation", "en": "Organisation"},
    "team": {"fr": "Équipe", "en": "Team"},
    "template": {"fr": "Modèle de notebook", "en": "Notebook template"},
    "questionnaire": {"fr": "Questionnaire", "en": "Questionnaire"},
    "yes": {"fr": "oui", "en": "yes"},
    "no": {"fr": "non", "en": "no"},
    "no_answer": {"fr": "sans réponse", "en": "no answer"},
    "ai_vs_baseline": {
        "fr": "L'IA face à la solution sans IA",
        "en": "The AI against the non-AI solution",
    },
    "metric": {"fr": "Métrique", "en": "Metric"},
    "no_run": {"fr": "Aucune exécution enregistrée.", "en": "No recorded run."},
    "predictions_title": {
        "fr": "Prédictions et valeurs réelles",
        "en": "Predictions and true values",
    },
    "truth": {"fr": "Réel", "en": "Truth"},
    "ai": {"fr": "IA", "en": "AI"},
    "baseline": {"fr": "Sans IA", "en": "No AI"},
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
    "method": {"fr": "Méthode de mesure : {method}", "en": "Measurement method: {method}"},
    "history": {"fr": "Historique des exécutions", "en": "Run history"},
    "run": {"fr": "Exécution", "en": "Run"},
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
    # Committee reports (xlsx, HTML, CSV): columns, sheets, sections
    "report_rank": {"fr": "Rang", "en": "Rank"},
    "report_wh_per_1000_predictions": {
        "fr": "Wh / 1 000 prédictions",
        "en": "Wh / 1,000 predictions",
    },
    "report_co2e_g": {"fr": "gCO2e", "en": "gCO2e"},
    "report_submission": {"fr": "Dossier", "en": "Submission"},
    "report_team": {"fr": "Équipe", "en": "Team"},
    "report_template": {"fr": "Modèle", "en": "Template"},
    "report_state": {"fr": "État du dossier", "en": "Dossier state"},
    "report_status": {"fr": "Statut de l'exécution", "en": "Run status"},
    "report_metric": {"fr": "Métrique", "en": "Metric"},
    "report_ai": {"fr": "IA", "en": "AI"},
    "report_baseline": {"fr": "Sans IA", "en": "No AI"},
    "report_gain_vs_baseline": {"fr": "Gain vs sans IA", "en": "Gain vs no AI"},
    "report_disagrees": {"fr": "Écart avec le notebook", "en": "Differs from notebook"},
    "report_jury_score": {"fr": "Note du jury (/100)", "en": "Jury score (/100)"},
    "report_jurors": {"fr": "Jurés", "en": "Jurors"},
    "report_energy_kwh": {"fr": "Énergie (kWh)", "en": "Energy (kWh)"},
    "report_method": {"fr": "Méthode de mesure", "en": "Measurement method"},
    "report_comparable": {"fr": "Comparable", "en": "Comparable"},
    "report_comparable_reason": {"fr": "Pourquoi non comparable", "en": "Why not comparable"},
    "report_reproduction": {"fr": "Reproductibilité", "en": "Reproducibility"},
    "report_run_id": {"fr": "Exécution", "en": "Run"},
    "report_value": {"fr": "Valeur", "en": "Value"},
    "report_phase": {"fr": "Phase", "en": "Phase"},
    "report_machine": {"fr": "Machine", "en": "Machine"},
    "report_verdict": {"fr": "Verdict", "en": "Verdict"},
    "report_reference_run": {"fr": "Exécution de référence", "en": "Reference run"},
    "report_runs": {"fr": "Nouvelles exécutions", "en": "New runs"},
    "report_differences": {"fr": "Écarts", "en": "Differences"},
    "report_criterion": {"fr": "Critère", "en": "Criterion"},
    "report_weight": {"fr": "Poids", "en": "Weight"},
    "report_mean": {"fr": "Moyenne", "en": "Mean"},
    "report_median": {"fr": "Médiane", "en": "Median"},
    "report_spread": {"fr": "Écart max-min", "en": "Spread (max-min)"},
    "report_disagreement": {"fr": "Désaccord", "en": "Disagreement"},
    "report_weighted_total": {"fr": "Note pondérée (/100)", "en": "Weighted score (/100)"},
    "report_at": {"fr": "Date", "en": "When"},
    "report_actor": {"fr": "Par", "en": "By"},
    "report_from": {"fr": "De", "en": "From"},
    "report_to": {"fr": "Vers", "en": "To"},
    "report_reason": {"fr": "Motif", "en": "Reason"},
    "report_sheet_ranking": {"fr": "Classement", "en": "Ranking"},
    "report_sheet_metrics": {"fr": "Métriques", "en": "Metrics"},
    "report_sheet_energy": {"fr": "Énergie", "en": "Energy"},
    "report_sheet_reproducibility": {"fr": "Reproductibilité", "en": "Reproducibility"},
    "report_sheet_jury": {"fr": "Jury", "en": "Jury"},
    "report_sheet_states": {"fr": "États", "en": "States"},
    "report_sheet_audit": {"fr": "Journal", "en": "Audit log"},
    "report_title": {
        "fr": "Rapport au comité de financement",
        "en": "Report to the funding committee",
    },
    "report_generated": {"fr": "Généré le", "en": "Generated on"},
    "report_no_rows": {"fr": "Rien à montrer.", "en": "Nothing to show."},
    "report_yes": {"fr": "oui", "en": "yes"},
    "report_no": {"fr": "non", "en": "no"},
}


def t(key: str, lang: str = DEFAULT_LANGUAGE, **values: object) -> str:
    """The label `key` in `lang` (French when `lang` is unknown), with `values` filled in."""
    entry = TEXTS[key]
    text = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    return text.format(**values) if values else text
