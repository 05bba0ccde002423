"""Kits: what a funder publishes for a call, and the workspaces made from it.

The templates and the example calls ship inside the package (`workbench/resources/`), so
`workbench init DIR` makes a workspace on a machine that only installed the wheel. A kit
is a zip a funder sends to teams: the call, the templates it accepts, and a README in
French and English (questionnaire, rubric, measurement protocol, data schemas, deadline).
`workbench init DIR --kit FILE` makes a team's workspace from it.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import zipfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from workbench.calls import CUSTOM_TEMPLATE
from workbench.environments import KIT_LOCK_SUFFIX
from workbench.errors import InputError
from workbench.vocabulary import LANGUAGES

if TYPE_CHECKING:
    from workbench.calls import Call
    from workbench.templates import TemplateInfo
    from workbench.workspace import Workspace

KIT_MANIFEST = "kit.json"
KIT_FORMAT = 1
# What a kit may hold; anything else in the zip is refused, not extracted.
KIT_FOLDERS = ("calls", "templates/notebooks")
KIT_MAX_BYTES = 200 * 1024 * 1024


def resources_root() -> Path:
    """The package's own calls and templates (a real folder: the wheel is installed unzipped)."""
    return Path(str(resources.files("workbench") / "resources"))


def _check_target(folder: Path) -> None:
    if folder.exists() and any(folder.iterdir()):
        raise InputError(f"{folder}: not empty; a workspace is made in a new or empty folder")


WORKSPACE_README = {
    "fr": """# Espace de travail Workbench

Ce dossier est un espace de travail : `calls/` contient les appels à projets,
`templates/notebooks/` les modèles de notebooks, `submissions/` les dossiers des équipes,
`runs/` les exécutions et `workbench.db` la base.

    workbench templates --lang fr          # les modèles disponibles
    workbench questionnaire APPEL --lang fr
    workbench new APPEL --template MODELE --id MON-DOSSIER --team "Mon équipe"
    workbench run APPEL/MON-DOSSIER""",
    "en": """# Workbench workspace

This folder is a workspace: `calls/` holds the funding calls, `templates/notebooks/` the notebook
templates, `submissions/` the teams' dossiers, `runs/` the runs and `workbench.db` the store.

    workbench templates                    # the templates available
    workbench questionnaire CALL
    workbench new CALL --template TEMPLATE --id MY-DOSSIER --team "My team"
    workbench run CALL/MY-DOSSIER""",
}


def init_workspace(folder: Path, kit: Path | None = None) -> Path:
    """Make a workspace in `folder`: from the package's calls and templates, or from a kit."""
    folder = folder.resolve()
    _check_target(folder)
    if kit is not None:
        members = _kit_members(kit)  # checked before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "submissions").mkdir()
    if kit is None:
        source = resources_root()
        shutil.copytree(source / "calls", folder / "calls")
        shutil.copytree(source / "templates" / "notebooks", folder / "templates" / "notebooks")
        readme = f"{WORKSPACE_README['fr']}\n\n{WORKSPACE_README['en']}\n"
        (folder / "README.md").write_text(readme, encoding="utf-8")
        return folder
    with zipfile.ZipFile(kit) as archive:
        for name in members:
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
    (folder / "templates" / "notebooks").mkdir(parents=True, exist_ok=True)
    return folder


def _kit_members(kit: Path) -> list[str]:
    """The kit's files, after checking every entry: only the kit's own folders, nothing else."""
    try:
        archive = zipfile.ZipFile(kit)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{kit}: not a kit (cannot read it as a zip: {exc})") from exc
    with archive:
        infos = archive.infolist()
        names = {info.filename for info in infos}
        if KIT_MANIFEST not in names:
            raise InputError(f"{kit}: not a kit ({KIT_MANIFEST} is missing)")
        total = 0
        members = []
        for info in infos:
            if info.is_dir():
                continue
            pure = PurePosixPath(info.filename)
            mode = info.external_attr >> 16
            allowed = (
                str(pure) in (KIT_MANIFEST, "README.md")
                or (str(pure.parent) in KIT_FOLDERS and pure.suffix in (".yaml", ".ipynb"))
                or (str(pure.parent) == "calls" and pure.suffix == KIT_LOCK_SUFFIX)
            )
            if (
                pure.is_absolute()
                or ".." in pure.parts
                or not allowed
                or (mode & 0o170000 not in (0, 0o100000))
            ):
                raise InputError(f"{kit}: unexpected entry {info.filename!r}; nothing was written")
            total += info.file_size
            members.append(info.filename)
        if total > KIT_MAX_BYTES:
            raise InputError(f"{kit}: {total} bytes uncompressed, over the kit limit")
        manifest = json.loads(archive.read(KIT_MANIFEST))
        if manifest.get("format") != KIT_FORMAT:
            raise InputError(f"{kit}: kit format {manifest.get('format')!r} is not supported")
    return members


def _protocol_lines(call: Call, lang: str) -> Iterator[str]:
    p = call.protocol
    fr = lang == "fr"
    isolation = {
        "sandbox": (
            "dans un bac à sable (bubblewrap) : sans réseau, système en lecture seule, "
            "seul le dossier de l'exécution est accessible en écriture",
            "in a sandbox (bubblewrap): no network, read-only system, only the run's folder "
            "writable",
        ),
        "process": (
            "dans un processus limité (mémoire, fichiers, processus)",
            "in a limited process (memory, files, processes)",
        ),
        "none": ("sans isolation", "without isolation"),
    }[p.isolation]
    if fr:
        yield (
            f"- Chaque notebook est exécuté à nouveau par le financeur, sur une même machine de "
            f"référence, dans un noyau neuf, {isolation[0]}."
        )
        yield f"- Durée maximale d'une exécution complète : {p.time_limit_s:g} s."
        yield (
            f"- Mémoire maximale de l'exécution (processus enfants et /tmp compris) : "
            f"{p.memory_limit_mb} Mo ; au plus {p.pids_limit} processus ; /tmp et /dev/shm de "
            f"{p.tmp_size_mb} Mo chacun ; {p.disk_limit_mb} Mo écrits dans son dossier."
        )
        yield (
            f"- Énergie mesurée par phase (cellules étiquetées data, train, inference, baseline, "
            f"evaluate) avec codecarbon ; carbone selon le mix électrique du pays "
            f"{p.country_iso_code}, PUE {p.pue:g}."
        )
        yield (
            "- Reproduction : chaque métrique doit être retrouvée à "
            f"±{p.default_tolerance.abs:g} + {p.default_tolerance.rel:g} × |valeur| près, "
            "sauf tolérances propres : "
            + (
                ", ".join(f"{m} (±{t.abs:g} + {t.rel:g}×)" for m, t in p.tolerances.items())
                or "aucune"
            )
            + "."
        )
    else:
        yield (
            f"- The funder runs every notebook again on one reference machine, in a fresh "
            f"kernel, {isolation[1]}."
        )
        yield f"- Time limit of a whole run: {p.time_limit_s:g} s."
        yield (
            f"- Memory limit of the whole run (child processes and /tmp included): "
            f"{p.memory_limit_mb} MB; at most {p.pids_limit} processes; /tmp and /dev/shm of "
            f"{p.tmp_size_mb} MB each; {p.disk_limit_mb} MB written in its folder."
        )
        yield (
            f"- Energy measured per phase (cells tagged data, train, inference, baseline, "
            f"evaluate) with codecarbon; carbon from the electricity mix of {p.country_iso_code}, "
            f"PUE {p.pue:g}."
        )
        yield (
            "- Reproduction: every metric must be found again within "
            f"±{p.default_tolerance.abs:g} + {p.default_tolerance.rel:g} × |value|, "
            "except own tolerances: "
            + (
                ", ".join(f"{m} (±{t.abs:g} + {t.rel:g}×)" for m, t in p.tolerances.items())
                or "none"
            )
            + "."
        )
    if p.environment is not None:
        packages = ", ".join(p.environment.requirements) or "-"
        lock_name = p.environment.lock or f"{call.id}.lock"
        yield (
            f"- Environnement Python de l'appel : {packages}, figé dans "
            f"`calls/{lock_name}` ; `workbench env build {call.id}` le construit à "
            "l'identique, et un notebook n'importe que ce qu'il fournit."
            if fr
            else f"- The call's Python environment: {packages}, locked in "
            f"`calls/{lock_name}`; `workbench env build {call.id}` builds the same one, "
            "and a notebook imports only what it provides."
        )
    if call.required_metrics:
        names = ", ".join(call.required_metrics)
        yield (f"- Métriques obligatoires : {names}." if fr else f"- Required metrics: {names}.")


def question_lines(call: Call, lang: str) -> Iterator[str]:
    """A line per question: id, type, choices and text (what `workbench questionnaire` prints)."""
    kinds = {
        "yes_no": ("oui/non (true/false)", "yes/no (true/false)"),
        "text": ("texte", "text"),
        "choice": ("choix", "choice"),
    }
    for q in call.questionnaire:
        kind = kinds[q.type][0 if lang == "fr" else 1]
        choices = f" [{' | '.join(q.choices)}]" if q.choices else ""
        optional = "" if q.required else (" (facultatif)" if lang == "fr" else " (optional)")
        yield f"- `{q.id}` ({kind}{choices}){optional}: {q.text.get(lang)}"


def _template_lines(info: TemplateInfo, lang: str) -> Iterator[str]:
    yield f"### `{info.id}` — {info.text('title', lang)}"
    yield ""
    description = info.text("description", lang)
    if description:
        yield description
        yield ""
    metric = info.primary_metric
    if metric:
        better = {
            ("fr", "lower"): "plus bas est meilleur",
            ("fr", "higher"): "plus haut est meilleur",
            ("en", "lower"): "lower is better",
            ("en", "higher"): "higher is better",
        }.get((lang, str(metric.get("direction"))), "")
        yield (
            f"{'Métrique principale :' if lang == 'fr' else 'Primary metric:'} "
            f"`{metric.get('name', '')}` ({better})"
        )
        yield ""
    if info.data_columns:
        yield "| colonne / column | " + ("type et sens |" if lang == "fr" else "type and meaning |")
        yield "|---|---|"
        for column, meaning in info.data_columns.items():
            yield f"| `{column}` | {meaning} |"
        yield ""


def kit_readme(call: Call, templates: list[TemplateInfo]) -> str:
    """The kit's README: everything a team needs to answer the call, French first."""
    lines: list[str] = []
    for lang in LANGUAGES:  # French first
        fr = lang == "fr"
        lines += [f"# {call.title.get(lang)}", ""]
        if call.notice is not None:
            lines += [f"> {call.notice.get(lang)}", ""]
        lines += [
            f"{'Financeur :' if fr else 'Funder:'} {call.funder}  ",
            f"{'Programme :' if fr else 'Programme:'} {call.programme}  ",
            f"{'Date limite de dépôt :' if fr else 'Deadline:'} **{call.deadline.isoformat()}**",
            "",
            "## " + ("Démarrer" if fr else "Getting started"),
            "",
            f"    workbench init mon-dossier --kit {call.id}-kit.zip"
            if fr
            else f"    workbench init my-dossier --kit {call.id}-kit.zip",
            f'    workbench new {call.id} --template MODELE --id MON-ID --team "Mon équipe"'
            if fr
            else f'    workbench new {call.id} --template TEMPLATE --id MY-ID --team "My team"',
            "",
            "## Questionnaire",
            "",
            *question_lines(call, lang),
            "",
            (
                "Les réponses sont exigées pour remettre le dossier (`workbench pack`), pas pour "
                "exécuter le notebook."
                if fr
                else "Answers are required to hand the dossier in (`workbench pack`), not to run "
                "the notebook."
            ),
            "",
            "## " + ("Grille d'évaluation du jury" if fr else "The jury's rubric"),
            "",
            "| critère / criterion | " + ("poids | échelle |" if fr else "weight | scale |"),
            "|---|---|---|",
            *(
                f"| {c.label.get(lang)} | {c.weight:.0%} | {c.scale.min:g}–{c.scale.max:g} |"
                for c in call.rubric
            ),
            "",
            "## " + ("Protocole de mesure" if fr else "Measurement protocol"),
            "",
            *_protocol_lines(call, lang),
            "",
            "## " + ("Modèles de notebooks acceptés" if fr else "Accepted notebook templates"),
            "",
        ]
        for info in templates:
            lines += list(_template_lines(info, lang))
        if CUSTOM_TEMPLATE in call.templates:
            lines += [
                (
                    "Un notebook propre à l'équipe est aussi accepté (`--template custom "
                    "--notebook CHEMIN`)."
                    if fr
                    else "A team's own notebook is accepted too (`--template custom "
                    "--notebook PATH`)."
                ),
                "",
            ]
    return "\n".join(lines)


def _kit_lock(workspace: Workspace, call: Call) -> tuple[str, str] | None:
    """The lock a kit carries (file name under `calls/`, text), or None without environment."""
    from workbench import environments

    spec = environments.declared(call, workspace.calls_dir)
    if spec is None:
        return None
    environment = call.protocol.environment
    name = environment.lock if environment and environment.lock else f"{call.id}{KIT_LOCK_SUFFIX}"
    if spec.lock is not None:
        return name, spec.lock
    lock = environments.read_lock(spec, environments.default_root(workspace.root))
    if lock is None:
        raise environments.not_built(call.id)
    return name, lock


def write_kit(workspace: Workspace, call_id: str, out: Path) -> Path:
    """Write the kit of a call: its file, its accepted templates, the README and a manifest."""
    from workbench.calls import call_path
    from workbench.templates import template_info

    call = workspace.call(call_id)
    lock = _kit_lock(workspace, call)  # an unbuilt environment fails here, before writing
    accepted = [t for t in call.templates if t != CUSTOM_TEMPLATE]
    infos = [template_info(workspace, t) for t in accepted]  # a missing template fails here
    manifest = {
        "format": KIT_FORMAT,
        "call": call.id,
        "deadline": call.deadline.isoformat(),
        "templates": accepted,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(KIT_MANIFEST, json.dumps(manifest, indent=2) + "\n")
        archive.writestr("README.md", kit_readme(call, infos))
        archive.write(call_path(workspace.calls_dir, call.id), f"calls/{call.id}.yaml")
        if lock is not None:
            # The funder's lock: the team's `workbench env build` installs exactly it.
            archive.writestr(f"calls/{lock[0]}", lock[1])
        for template in accepted:
            archive.write(
                workspace.template_path(template), f"templates/notebooks/{template}.ipynb"
            )
    partial.replace(out)  # a kit is never left half-written
    return out
