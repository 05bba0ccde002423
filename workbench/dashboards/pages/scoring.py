"""The scoring form: one input per rubric criterion, a private note for the jury, a message
to the team, Save, and the juror's saves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workbench.dashboards.pages.common import Context, macros, show_html, show_widget

if TYPE_CHECKING:
    from workbench.jury import Juror


def scale_options(scale: Any) -> list[float]:
    count = round((scale.max - scale.min) / scale.step)
    return [round(scale.min + i * scale.step, 9) for i in range(count + 1)]


def saves_table(rows: list[Any], ctx: Context) -> str:
    return str(macros("scoring").saves(rows, ctx.call.rubric, ctx.lang))


def scoring_form(ctx: Context, juror: Juror, token: str, key: str) -> None:
    """One input per rubric criterion, the note and the message, and Save; conflicts see a
    notice instead.

    The juror is the one the token proved at render time, and `save_score` proves it
    again against the store on every save; the browser only sends the widget values.
    """
    import ipywidgets as widgets

    from workbench.errors import WorkbenchError
    from workbench.i18n import t
    from workbench.jury import history, save_score

    lang = ctx.lang
    html = macros("scoring")
    show_html(html.heading(lang))
    if juror.has_conflict(key):
        show_html(html.conflict(lang))
        return
    mine = history(ctx.store, key, juror.id)
    previous = mine[-1] if mine else None
    inputs: dict[str, Any] = {}
    rows = []
    for criterion in ctx.call.rubric:
        options = scale_options(criterion.scale)
        current = previous.values.get(criterion.id) if previous else None
        if len(options) <= 11:
            field: Any = widgets.ToggleButtons(
                options=[(f"{v:g}", v) for v in options],
                value=current if current in options else None,
                style={"button_width": "42px"},
            )
        else:
            field = widgets.BoundedFloatText(
                value=current if current is not None else criterion.scale.min,
                min=criterion.scale.min,
                max=criterion.scale.max,
                step=criterion.scale.step,
                layout={"width": "120px"},
            )
        field.add_class(f"wb-criterion-{criterion.id}")
        inputs[criterion.id] = field
        label = widgets.HTML(
            str(html.criterion(criterion.label.get(lang), criterion.weight)),
            layout={"width": "420px"},
        )
        rows.append(widgets.HBox([label, field]))
    # Two fields that must never be confused: what stays with the jury, what goes to the team.
    comment = widgets.Textarea(
        value=previous.comment if previous else "",
        placeholder=t("private_note", lang),
        layout={"width": "720px", "height": "80px"},
    )
    comment.add_class("wb-comment")
    message = widgets.Textarea(
        value=previous.message if previous else "",
        placeholder=t("team_message", lang),
        layout={"width": "720px", "height": "80px"},
    )
    message.add_class("wb-message")
    notes = [
        widgets.HTML(str(html.field_label("private_note", lang))),
        comment,
        widgets.HTML(str(html.field_label("team_message", lang))),
        message,
    ]
    save = widgets.Button(description=t("save", lang), button_style="primary", icon="")
    save.add_class("wb-save")
    status = widgets.HTML()
    status.add_class("wb-status")
    saves = widgets.HTML(saves_table(mine, ctx))
    if previous is not None:
        status.value = str(html.saved(previous, lang))

    def on_save(_button: Any) -> None:
        values = {cid: field.value for cid, field in inputs.items()}
        missing = [c.label.get(lang) for c in ctx.call.rubric if values.get(c.id) is None]
        if missing:
            reason = "; ".join(t("not_scored", lang, label=m) for m in missing)
            status.value = str(html.failed(reason, lang))
            return
        try:
            row = save_score(
                ctx.store, ctx.call, token, key, values, comment.value, message=message.value
            )
        except WorkbenchError as exc:
            status.value = str(html.failed(str(exc), lang))
            return
        status.value = str(html.just_saved(row, lang))
        saves.value = saves_table(history(ctx.store, key, juror.id), ctx)

    save.on_click(on_save)
    show_widget(widgets.VBox([*rows, *notes, widgets.HBox([save, status]), saves]))
